package audit_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/docaxis/docaxis/broker/audit"
)

// FuzzVerifyBundle feeds the offline verifier arbitrary files: it must
// never panic, never take more than its limits allow, and never call a
// bundle good that has problems.
func FuzzVerifyBundle(f *testing.F) {
	f.Add(synthBundle(f, 2))
	f.Add(overlappingZip(3, []byte("record")))
	f.Add(craftZip(f, zipEntry{name: audit.ManifestFile, raw: zeroBomb(2), real: 2 << 20}))
	f.Add(craftZip(f, zipEntry{name: audit.ManifestFile, raw: zeroBomb(2), declared: 10}))
	f.Add(craftZip(f, zipEntry{name: "../manifest.json", data: []byte("{}")}))
	f.Add(craftZip(f, zipEntry{name: audit.ManifestFile, data: []byte(`{"format":"docaxis-audit-bundle/2","records":[{"seq":1,"file":"records/00000000000000000001.jws"}]}`)}))
	f.Add([]byte{})
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	limits := audit.VerifyLimits{Entries: 64, EntrySize: 1 << 20, AttachmentSize: 1 << 20, TotalSize: 4 << 20, Ratio: 100}
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := audit.VerifyBundle(context.Background(), bytes.NewReader(b), int64(len(b)), audit.VerifyOptions{Limits: limits, Workers: 1})
		var p *audit.Problem
		if errors.As(err, &p) && (rep == nil || len(rep.Problems) == 0) {
			t.Fatalf("problem %v without a report of it", err)
		}
		var le *audit.LimitError
		if errors.As(err, &le) && (le.Limit == "" || le.Value <= le.Max) {
			t.Fatalf("limit error %+v", le)
		}
		if err == nil && (rep == nil || len(rep.Problems) != 0) {
			t.Fatalf("no error, report %+v", rep)
		}
	})
}
