package attacks_test

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// Attacks on the audit: a record the bus refused must never come out
// "verified" in replay or in an evidence bundle, and a bundle handed to an
// auditor must not make the verifier take gigabytes.

// H99's key leaked and its certificate was revoked. Whoever holds the key
// signs a document to H14 dated before the revocation, more than the
// backdating window before it reaches the bus, and publishes it with H99's
// credentials. The mailbox refuses it; replay, the exported bundle and the
// offline verifier must say "invalid" too (they used to judge it at the
// time it claims, before the revocation, and call it verified).
func TestAuditBackdatedPastRevocation(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	victimID, _ := a.victimSend()
	chainer := auditStartChainer(t, a)

	// Agency certificates are years old in real life; the development CA
	// is an hour old, so H99 gets one from an older CA the bus trusts.
	ca := auditOldCA(t, 60*24*time.Hour)
	a.bus.Trust.AddRoot(ca.Cert)
	leaked, err := ca.Issue(attacker, cast[attacker], signing.IssueOptions{NotBefore: time.Now().Add(-40 * 24 * time.Hour), Validity: 400 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	a.bus.Register(leaked, false)
	revokedAt := time.Now().Add(-2 * time.Hour)
	crl, err := ca.NewCRL([]signing.Revocation{{Serial: leaked.Certificate().SerialNumber, At: revokedAt}}, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.admin.PublishCRL(ctx, crl); err != nil {
		t.Fatal(err)
	}

	e := envelope.New(attacker, []string{victimRecipient}, "Quyết định (ký lùi ngày)")
	e.Created = revokedAt.Add(-signing.MaxBackdate).Truncate(time.Millisecond) // before the revocation, > MaxBackdate ago
	raw, err := leaked.Seal(e)
	if err != nil {
		t.Fatal(err)
	}
	nc, _ := a.raw(attacker)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, record.DocSubject(victimRecipient, attacker), raw); err != nil {
		t.Fatal(err)
	}

	// The mailbox refuses it and never hands it to H14's application.
	var mu sync.Mutex
	outcomes := map[string]broker.Outcome{}
	mb, err := a.client(victimRecipient).Mailbox(ctx, victimRecipient, broker.OnOutcome(func(o broker.Outcome) {
		mu.Lock()
		outcomes[o.ID] = o
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	handed := map[string]bool{}
	for ctx.Err() == nil {
		mu.Lock()
		_, done := outcomes[e.ID]
		mu.Unlock()
		if done {
			break
		}
		if _, err := mb.Fetch(ctx, 10, 200*time.Millisecond, func(_ context.Context, d *broker.Delivery) error {
			handed[d.Envelope.ID] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if o := outcomes[e.ID]; o.Verified || !o.Quarantined || handed[e.ID] || !strings.Contains(o.Error, "before it was recorded") {
		t.Fatalf("mailbox: %+v, handed %v", o, handed[e.ID])
	}

	// Replay agrees with the mailbox, and still verifies the victim's own.
	if _, err := chainer.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := audit.NewReader(a.admin.JetStream(), audit.ReaderConfig{Verifier: a.admin.Verifier()})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]*audit.Record{}
	if _, err := r.Replay(ctx, audit.Query{}, func(rec *audit.Record) error {
		if rec.Type == "document" {
			seen[rec.ID] = rec
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if rec := seen[e.ID]; rec == nil || rec.Verified || !strings.Contains(rec.Reason, "before it was recorded") {
		t.Fatalf("replay of the backdated record: %+v", rec)
	}
	if rec := seen[victimID]; rec == nil || !rec.Verified {
		t.Fatalf("replay of the victim's document: %+v", rec)
	}

	// So do the bundle and the offline verifier.
	var buf bytes.Buffer
	m, err := r.Export(ctx, audit.ExportOptions{}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, mr := range m.Records {
		if mr.ID == e.ID && mr.Verified {
			t.Fatalf("the bundle's manifest calls the backdated record verified: %+v", mr)
		}
	}
	rep, err := audit.VerifyBundle(ctx, bytes.NewReader(buf.Bytes()), int64(buf.Len()), audit.VerifyOptions{Roots: a.bus.Trust.Roots()})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	found := false
	for _, res := range rep.Results {
		switch res.ID {
		case e.ID:
			found = true
			if res.Verified || !strings.Contains(res.Reason, "before it was recorded") {
				t.Fatalf("offline verdict on the backdated record: %+v", res)
			}
		case victimID:
			if !res.Verified {
				t.Fatalf("offline verdict on the victim's document: %+v", res)
			}
		}
	}
	if !found || rep.RecordedInvalid == 0 {
		t.Fatalf("offline: backdated record found %v, %d recorded invalid", found, rep.RecordedInvalid)
	}
}

// An attacker hands an auditor a bundle of about a megabyte that expands
// to gigabytes. `audit verify` refuses each before decompressing it, naming
// the entry, with memory bounded: measured, not timed.
func TestAuditVerifyZipBombs(t *testing.T) {
	rec := audit.RecordFile(1)
	gib := auditZeroBomb(1024)
	manifest := func(files map[string]string) []byte {
		b, _ := json.Marshal(map[string]any{"format": audit.BundleFormat, "records": []any{}, "links": map[string]any{}, "checkpoints": []any{},
			"certificates": []any{}, "covered": false, "files": files, "created": time.Now()})
		return b
	}
	att := "attachments/" + strings.Repeat("0", 64)
	tests := []struct {
		name    string
		entries []auditEntry
		want    string // in the error
		maxHeap uint64 // bytes the verification may allocate
	}{
		{"a GiB of zeros as a record", []auditEntry{{name: rec, raw: gib, size: 1 << 30}}, rec, 8 << 20},
		{"a GiB of zeros declared as 100 bytes", []auditEntry{{name: audit.ManifestFile, raw: gib, size: 100}}, audit.ManifestFile, 8 << 20},
		{"two hundred MiB under the entry limit", []auditEntry{{name: audit.ManifestFile, raw: auditZeroBomb(200), size: 200 << 20}}, "--max-ratio", 8 << 20},
		{"a thousand small bombs", auditSmallBombs(1000), "--max-ratio", 8 << 20},
		{"256 MiB of zeros as an attachment, only streamed", []auditEntry{
			{name: audit.ManifestFile, data: manifest(map[string]string{att: strings.Repeat("0", 64)})},
			{name: att, raw: auditZeroBomb(256), size: 256 << 20},
		}, "no trust root", 16 << 20},
		{"an entry climbing out", []auditEntry{{name: "../../etc/cron.d/x", data: []byte("* * * * * root sh")}}, "../../etc/cron.d/x", 1 << 20},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "bundle.zip")
			auditWriteZip(t, path, tt.entries)
			st, _ := os.Stat(path)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := audit.VerifyBundleFile(context.Background(), path, audit.VerifyOptions{})
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one saying %q", err, tt.want)
			}
			if !errors.Is(err, audit.ErrBundle) && !errors.Is(err, audit.ErrCertificate) {
				t.Fatalf("err = %v, want a bundle error", err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > tt.maxHeap {
				t.Fatalf("verifying a %d-byte file allocated %d bytes, at most %d", st.Size(), grew, tt.maxHeap)
			}
			t.Logf("%d-byte file: %v", st.Size(), err)
		})
	}
}

// auditStartChainer runs the bus's audit chainer, as `docaxis serve` does.
func auditStartChainer(t *testing.T, a *arena) *audit.Chainer {
	t.Helper()
	key, err := audit.OpenKey(filepath.Join(a.bus.Keystore.Dir, "audit"), a.bus.CA)
	if err != nil {
		t.Fatal(err)
	}
	c, err := audit.StartChainer(ctxT(t), a.admin.JetStream(), audit.ChainerConfig{Key: key, Interval: time.Hour, Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	return c
}

// auditOldCA is a root valid since age ago.
func auditOldCA(t *testing.T, age time.Duration) *signing.CA {
	t.Helper()
	key, err := signing.NewKey(signing.KeyECDSA)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "old agency CA"},
		NotBefore: now.Add(-age), NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &signing.CA{Cert: cert, Key: key}
}

// auditEntry is a file of a crafted zip: data deflated, or raw written as
// it is with size declared as its uncompressed size.
type auditEntry struct {
	name string
	data []byte
	raw  []byte
	size int64
}

func auditWriteZip(t *testing.T, path string, entries []auditEntry) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, e := range entries {
		var w interface{ Write([]byte) (int, error) }
		if e.raw != nil {
			w, err = zw.CreateRaw(&zip.FileHeader{Name: e.name, Method: zip.Deflate, CompressedSize64: uint64(len(e.raw)), UncompressedSize64: uint64(e.size)})
			if err == nil {
				_, err = w.Write(e.raw)
			}
		} else {
			w, err = zw.Create(e.name)
			if err == nil {
				_, err = w.Write(e.data)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// auditZeroBomb is a deflate stream of mib MiB of zeros, a thousand times
// smaller: one flushed block of a MiB of zeros, repeated.
func auditZeroBomb(mib int) []byte {
	var blk bytes.Buffer
	fw, _ := flate.NewWriter(&blk, flate.BestCompression)
	fw.Write(make([]byte, 1<<20))
	fw.Flush()
	return append(bytes.Repeat(blk.Bytes(), mib), 0x03, 0x00)
}

func auditSmallBombs(n int) []auditEntry {
	one := auditZeroBomb(1)
	es := make([]auditEntry, n)
	for i := range es {
		es[i] = auditEntry{name: audit.RecordFile(uint64(i + 1)), raw: one, size: 1 << 20}
	}
	return es
}
