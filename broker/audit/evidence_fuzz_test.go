package audit_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/tsa"
	"github.com/docaxis/docaxis/signing"
)

// FuzzVerifyEvidence feeds the offline verifier evidence packages: the
// manifest's time-stamp entries, the .tsr files and the chain segments
// are parsed from outside data and must never panic nor pass when wrong.
func FuzzVerifyEvidence(f *testing.F) {
	ca, err := signing.NewCA("fuzz CA", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	a, err := tsa.NewAuthority(ca, "fuzz TSA", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	cp := []byte("eyJhbGciOiJFUzI1NiJ9.e30.AAAA")
	q, _ := tsa.NewRequest(cp)
	tsr, err := a.Sign(q)
	if err != nil {
		f.Fatal(err)
	}
	manifest := []byte(`{"format":"docaxis-evidence/1","document":"01a241f5-18e0-7771-9fb2-400e2c8df07a",` +
		`"records":[],"links":{"file":"links.jsonl","count":1,"first":1,"last":1},` +
		`"checkpoints":[{"file":"checkpoints/00000000000000000001.jws","role":"closing","seq":1,"head":"00"}],` +
		`"timestamps":[{"file":"timestamps/00000000000000000001.tsr","checkpoint":"checkpoints/00000000000000000001.jws","seq":1,"time":"2026-01-01T00:00:00Z","tsa":"x"}],` +
		`"certificates":[],"covered":true,"files":{}}`)
	link := []byte(`{"seq":1,"time":"2026-01-01T00:00:00Z","subject":"axis.doc.a.b","digest":"00","prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"00"}` + "\n")
	f.Add(craftZip(f, zipEntry{name: audit.ManifestFile, data: manifest},
		zipEntry{name: "timestamps/00000000000000000001.tsr", data: tsr},
		zipEntry{name: "checkpoints/00000000000000000001.jws", data: cp},
		zipEntry{name: audit.LinksFile, data: link},
		zipEntry{name: audit.TSACAFile, data: signing.EncodeCerts(ca.Cert)}))
	f.Add(craftZip(f, zipEntry{name: audit.ManifestFile, data: manifest}, zipEntry{name: "timestamps/00000000000000000001.tsr", data: []byte("garbage")}))
	limits := audit.VerifyLimits{Entries: 64, EntrySize: 1 << 20, AttachmentSize: 1 << 20, TotalSize: 4 << 20, Ratio: 100}
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := audit.VerifyBundle(context.Background(), bytes.NewReader(b), int64(len(b)), audit.VerifyOptions{Limits: limits, Workers: 1})
		var p *audit.Problem
		if errors.As(err, &p) && (rep == nil || len(rep.Problems) == 0) {
			t.Fatalf("problem %v without a report of it", err)
		}
		if err == nil && rep != nil && rep.Format == audit.EvidenceFormat && len(rep.Timestamps) == 0 && rep.Covered {
			t.Fatal("an evidence package without a valid token reported covered")
		}
	})
}
