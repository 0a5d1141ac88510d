package pdf_test

import (
	"bytes"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/pdf"
)

// withSignature wraps contents (hex digits) in a signature dictionary whose
// ByteRange excludes exactly that /Contents and covers the whole file.
func withSignature(contents string) []byte {
	head := "%%PDF-1.7\n1 0 obj\n<< /Type /Sig /SubFilter /adbe.pkcs7.detached /ByteRange [0 %010d %010d %010d] /Contents "
	tail := " >>\nendobj\n%%EOF\n"
	a := len(fmt.Sprintf(head, 0, 0, 0))
	b := a + len(contents) + 2
	return []byte(fmt.Sprintf(head, a, b, len(tail)) + "<" + contents + ">" + tail)
}

// nestedDER returns depth SEQUENCEs nested around a NULL.
func nestedDER(depth int) []byte {
	b := []byte{0x05, 0x00}
	for range depth {
		b, _ = asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: b})
	}
	return b
}

// TestVerifyHostileStructures checks inputs built to make a parser
// recurse, allocate or loop without bound: each must be judged quickly.
func TestVerifyHostileStructures(t *testing.T) {
	ca := newCA(t, "docaxis test CA")
	trust := signing.NewTrust(ca.Cert)
	id := issue(t, ca, agencyA, "Bộ Khoa học và Công nghệ", signing.KeyECDSA)
	signed := signPDF(t, pdf.Minimal("x"), id, pdf.SignOptions{})
	manySigs := bytes.Clone(signed)
	for i := range 70 {
		manySigs = fmt.Appendf(manySigs, "%d 0 obj << /Type /Sig /ByteRange [0 1 2 3] /Contents <00> >> endobj\n", 100+i)
	}

	const mb = 1 << 20
	tests := []struct {
		name string
		in   []byte
	}{
		{"arrays nested a million deep", []byte("%PDF-1.7\n1 0 obj\n" + strings.Repeat("[", mb) + "\nendobj\n%%EOF\n")},
		{"dictionaries nested deep", []byte("%PDF-1.7\n1 0 obj\n" + strings.Repeat("<< /A ", mb/6) + "\nendobj\n%%EOF\n")},
		{"unterminated string", []byte("%PDF-1.7\n1 0 obj\n(" + strings.Repeat("(a", mb/2) + "\n%%EOF\n")},
		{"unterminated hex string", []byte("%PDF-1.7\n1 0 obj\n<" + strings.Repeat("0", mb) + "\n%%EOF\n")},
		{"a million objects", []byte("%PDF-1.7\n" + strings.Repeat("1 0 obj null endobj\n", mb/20) + "%%EOF\n")},
		{"huge numbers", []byte("%PDF-1.7\nxref\n99999999999999999999 99999999999 0 1\n0 9223372036854775807\ntrailer << /Size 9223372036854775807 >>\n%%EOF\n")},
		{"stream without end", []byte("%PDF-1.7\n1 0 obj << /Length 99999999999 >> stream\n" + strings.Repeat("x", mb) + "\n%%EOF\n")},
		{"CMS nested deep, indefinite lengths", withSignature(strings.Repeat("3080", mb/8))},
		{"CMS nested deep, definite lengths", withSignature(hex.EncodeToString(nestedDER(200)))},
		{"CMS of garbage", withSignature(strings.Repeat("ab", mb/4))},
		{"too many signature dictionaries", manySigs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			rep, err := pdf.Verify(bytes.NewReader(tc.in), int64(len(tc.in)), trust)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Verify took %v on %d bytes", d, len(tc.in))
			}
			switch {
			case err != nil:
				if !errors.Is(err, pdf.ErrMalformed) && !errors.Is(err, pdf.ErrUnsigned) && !errors.Is(err, pdf.ErrNotPDF) {
					t.Errorf("unexpected error kind: %v", err)
				}
				t.Log(err)
			case rep.OK():
				t.Fatalf("hostile input judged OK: %+v", rep.Signatures)
			default:
				t.Log(rep.Err())
			}
		})
	}
}
