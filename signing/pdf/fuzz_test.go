package pdf_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/pdf"
)

// FuzzVerify feeds arbitrary bytes to Verify: it must return a report or
// an error, never panic, and stay fast. Run with
//
//	go test ./signing/pdf -run '^$' -fuzz FuzzVerify -fuzztime 2m
func FuzzVerify(f *testing.F) {
	ca := newCA(f, "docaxis fuzz CA")
	trust := signing.NewTrust(ca.Cert)
	id := issue(f, ca, agencyA, "Bộ Nội vụ", signing.KeyECDSA)
	unsigned := pdf.Minimal("seed")
	signed := signPDF(f, unsigned, id, pdf.SignOptions{Reason: "seed"})
	f.Add(unsigned)
	f.Add(signed)
	f.Add(signed[:len(signed)/2])
	f.Add(append(bytes.Clone(signed), "%%EOF\n"...))
	f.Add([]byte("%PDF-1.7\n1 0 obj [[[[[[[[ << /ByteRange [0 1 2 3] /Contents <30> /Type /Sig >> endobj\n%%EOF"))

	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		rep, err := pdf.Verify(bytes.NewReader(data), int64(len(data)), trust)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Verify took %v on %d bytes", d, len(data))
		}
		if (rep == nil) == (err == nil) {
			t.Fatalf("Verify returned report %v and error %v", rep, err)
		}
		if rep == nil {
			return
		}
		if len(rep.Signatures) == 0 {
			t.Fatal("report without signatures")
		}
		_ = rep.OK()
		if _, err := json.Marshal(rep); err != nil {
			t.Fatalf("marshal report: %v", err)
		}
	})
}
