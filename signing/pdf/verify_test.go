package pdf_test

import (
	"bytes"
	"crypto/rand"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/pdf"
)

func TestVerifyTampered(t *testing.T) {
	ca := newCA(t, "docaxis test CA")
	trust := signing.NewTrust(ca.Cert)
	id := issue(t, ca, agencyA, "Bộ Ngoại giao", signing.KeyECDSA)
	signed := signPDF(t, pdf.Minimal("So tien: 1000000 dong"), id, pdf.SignOptions{Reason: "Approved"})
	orig := verifyPDF(t, signed, trust)
	br := orig.Signatures[0].ByteRange

	at := func(s string) int { return bytes.Index(signed, []byte(s)) }
	tests := []struct {
		name string
		off  int
	}{
		{"page text in the first range", at("1000000") + 1},
		{"signature reason in the second range", at("(Approved)") + 1},
		{"last byte", len(signed) - 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.off <= 0 || int64(tc.off) >= br[2]+br[3] || int64(tc.off) >= br[1] && int64(tc.off) < br[2] {
				t.Fatalf("offset %d not inside the signed ranges %v", tc.off, br)
			}
			bad := bytes.Clone(signed)
			bad[tc.off] ^= 0x01
			rep, err := pdf.Verify(bytes.NewReader(bad), int64(len(bad)), trust)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			s := rep.Signatures[0]
			if rep.OK() || s.Intact || !errors.Is(rep.Err(), pdf.ErrInvalidSignature) || s.Failure == "" {
				t.Fatalf("tampered file accepted: %+v", rep.Signatures)
			}
			t.Log(rep.Err())

			for _, ps := range pdfsig(t, bad) {
				if ps.Valid {
					t.Fatalf("pdfsig accepts the tampered file: %+v", ps)
				}
			}
		})
	}
}

// toBER re-encodes every constructed element of der with an indefinite
// length, as BER producers (BouncyCastle, some national CA tools) do.
func toBER(t *testing.T, der []byte) []byte {
	var v asn1.RawValue
	if _, err := asn1.Unmarshal(der, &v); err != nil {
		t.Fatal(err)
	}
	if !v.IsCompound {
		return v.FullBytes
	}
	out := []byte{v.FullBytes[0], 0x80}
	for rest := v.Bytes; len(rest) > 0; {
		var child asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &child); err != nil {
			t.Fatal(err)
		}
		out = append(out, toBER(t, child.FullBytes)...)
	}
	return append(out, 0, 0)
}

func TestVerifyBERSignature(t *testing.T) {
	ca := newCA(t, "docaxis test CA")
	trust := signing.NewTrust(ca.Cert)
	tsa := newTSA(t, ca)
	id := issue(t, ca, agencyA, "Bộ Nội vụ", signing.KeyRSA)
	signed := signPDF(t, pdf.Minimal("x"), id, pdf.SignOptions{TSA: tsa.URL})
	br := verifyPDF(t, signed, trust).Signatures[0].ByteRange

	// Replace the DER in /Contents by its BER form, padded with zeros.
	digits := signed[br[1]+1 : br[2]-1]
	raw, err := hex.DecodeString(string(digits))
	if err != nil {
		t.Fatal(err)
	}
	var v asn1.RawValue
	if _, err := asn1.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	ber := hex.EncodeToString(toBER(t, v.FullBytes))
	if len(ber) > len(digits) {
		t.Fatalf("BER form (%d digits) does not fit /Contents (%d)", len(ber), len(digits))
	}
	b := bytes.Clone(signed)
	copy(b[br[1]+1:], ber+strings.Repeat("0", len(digits)-len(ber)))

	rep := verifyPDF(t, b, trust)
	s := rep.Signatures[0]
	if !rep.OK() || s.Timestamp == nil || !s.Timestamp.Verified || !s.Timestamp.Trusted {
		t.Fatalf("BER signature: %v %+v %+v", rep.Err(), s, s.Timestamp)
	}
}

func TestVerifyAppendedBytes(t *testing.T) {
	ca := newCA(t, "docaxis test CA")
	trust := signing.NewTrust(ca.Cert)
	id := issue(t, ca, agencyA, "Bộ Quốc phòng", signing.KeyRSA)
	signed := signPDF(t, pdf.Minimal("x"), id, pdf.SignOptions{})

	tests := []struct{ name, tail string }{
		{"garbage", "garbage"},
		{"incremental update", "\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction 6 0 R >>\nendobj\n%%EOF\n"},
		{"a large tail", strings.Repeat("x", 5000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := append(bytes.Clone(signed), tc.tail...)
			rep := verifyPDF(t, b, trust)
			s := rep.Signatures[0]
			if !s.Intact || !s.Trusted || s.CoversWholeFile || rep.OK() || !errors.Is(rep.Err(), pdf.ErrModifiedAfterSigning) {
				t.Fatalf("appended bytes not detected: %v %+v", rep.Err(), s)
			}
			t.Log(rep.Err())
		})
	}
}

func TestVerifyTrust(t *testing.T) {
	ca := newCA(t, "docaxis test CA")
	rogue := newCA(t, "rogue CA")
	trust := signing.NewTrust(ca.Cert)
	good := issue(t, ca, agencyA, "Bộ Xây dựng", signing.KeyECDSA)
	bad := issue(t, rogue, agencyA, "Bộ Xây dựng", signing.KeyECDSA)
	revoked := issue(t, ca, agencyB, "Sở Xây dựng", signing.KeyECDSA)
	doc := pdf.Minimal("x")

	byGood := signPDF(t, doc, good, pdf.SignOptions{})
	byRogue := signPDF(t, doc, bad, pdf.SignOptions{})
	byRevoked := signPDF(t, doc, revoked, pdf.SignOptions{})
	trust.Revoke(envelope.Fingerprint(revoked.Chain[0]), time.Now().Add(-time.Minute))
	inCRL := issue(t, ca, agencyB, "Sở Xây dựng", signing.KeyRSA)
	byInCRL := signPDF(t, doc, inCRL, pdf.SignOptions{})
	crl, err := ca.NewCRL([]signing.Revocation{{Serial: inCRL.Chain[0].SerialNumber, At: time.Now().Add(-time.Minute)}}, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trust.ApplyCRL(crl); err != nil {
		t.Fatal(err)
	}
	countersignedByRogue := signPDF(t, byGood, bad, pdf.SignOptions{})

	tests := []struct {
		name  string
		doc   []byte
		trust *signing.Trust
		opts  []pdf.VerifyOption
		want  error
	}{
		{"untrusted CA", byRogue, trust, nil, signing.ErrUntrusted},
		{"no trust given", byGood, nil, nil, signing.ErrUntrusted},
		{"revoked before signing", byRevoked, trust, nil, signing.ErrRevoked},
		{"in the CRL before signing", byInCRL, trust, nil, signing.ErrRevoked},
		{"expired at the time checked", byGood, trust, []pdf.VerifyOption{pdf.At(time.Now().Add(48 * time.Hour))}, signing.ErrExpired},
		{"countersigned by an untrusted CA", countersignedByRogue, trust, nil, signing.ErrUntrusted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := pdf.Verify(bytes.NewReader(tc.doc), int64(len(tc.doc)), tc.trust, tc.opts...)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if rep.OK() || !errors.Is(rep.Err(), tc.want) {
				t.Fatalf("Err() = %v, want %v", rep.Err(), tc.want)
			}
			for _, s := range rep.Signatures {
				if !s.Intact {
					t.Errorf("signature %d not intact: %s", s.Number, s.Failure)
				}
			}
			last := rep.Signatures[len(rep.Signatures)-1]
			if last.Trusted || last.Failure == "" || last.Agency != agencyA && last.Agency != agencyB {
				t.Errorf("last signature: %+v", last)
			}
			t.Log(rep.Err())
		})
	}
}

func TestVerifyRevokedAfterSigning(t *testing.T) {
	ca := newCA(t, "docaxis test CA")
	trust := signing.NewTrust(ca.Cert)
	id := issue(t, ca, agencyA, "Bộ Xây dựng", signing.KeyECDSA)
	signed := signPDF(t, pdf.Minimal("x"), id, pdf.SignOptions{})
	// What was signed before the revocation stays valid.
	trust.Revoke(envelope.Fingerprint(id.Chain[0]), time.Now().Add(time.Minute))
	if rep := verifyPDF(t, signed, trust); !rep.OK() {
		t.Fatalf("signature made before the revocation refused: %v", rep.Err())
	}
}

func TestVerifyBadInput(t *testing.T) {
	ca := newCA(t, "docaxis test CA")
	trust := signing.NewTrust(ca.Cert)
	id := issue(t, ca, agencyA, "Bộ Công Thương", signing.KeyECDSA)
	signed := signPDF(t, pdf.Minimal("x"), id, pdf.SignOptions{})
	random := make([]byte, 4096)
	_, _ = rand.Read(random)
	sigAt := bytes.Index(signed, []byte("/Contents<"))

	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, pdf.ErrNotPDF},
		{"text", []byte("Kính gửi: Bộ Nội vụ"), pdf.ErrNotPDF},
		{"random bytes", random, pdf.ErrNotPDF},
		{"header only", []byte("%PDF-1.7\n"), pdf.ErrMalformed},
		{"header and garbage", append([]byte("%PDF-1.7\n"), random...), pdf.ErrMalformed},
		{"unsigned", pdf.Minimal("x"), pdf.ErrUnsigned},
		{"truncated in the signature", signed[:sigAt+100], pdf.ErrMalformed},
		{"truncated to its first half", signed[:len(signed)/2], pdf.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := pdf.Verify(bytes.NewReader(tc.in), int64(len(tc.in)), trust)
			if !errors.Is(err, tc.want) || rep != nil {
				t.Fatalf("Verify = %v, %v; want error %v", rep, err, tc.want)
			}
			t.Log(err)
		})
	}

	t.Run("truncated after the signature", func(t *testing.T) {
		b := signed[:len(signed)-40]
		rep := verifyPDF(t, b, trust)
		if rep.OK() || rep.Signatures[0].Intact || !strings.Contains(rep.Signatures[0].Failure, "truncated") {
			t.Fatalf("truncated file: %v %+v", rep.Err(), rep.Signatures)
		}
		t.Log(rep.Err())
	})

	t.Run("size beyond MaxSize", func(t *testing.T) {
		_, err := pdf.Verify(bytes.NewReader(signed), pdf.MaxSize+1, trust)
		if !errors.Is(err, pdf.ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
	})

	t.Run("size beyond the data", func(t *testing.T) {
		_, err := pdf.Verify(bytes.NewReader(signed), int64(len(signed))+100000, trust)
		if err == nil {
			t.Fatal("no error for a reader shorter than the size given")
		}
		t.Log(err)
	})
}

func TestReportJSON(t *testing.T) {
	ca := newCA(t, "docaxis test CA")
	trust := signing.NewTrust(ca.Cert)
	id := issue(t, ca, agencyA, "Bộ Nội vụ", signing.KeyECDSA)
	signed := signPDF(t, pdf.Minimal("x"), id, pdf.SignOptions{Reason: "Phê duyệt"})

	for _, tc := range []struct {
		name   string
		doc    []byte
		wantOK bool
	}{
		{"valid", signed, true},
		{"appended", append(bytes.Clone(signed), "tail"...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(verifyPDF(t, tc.doc, trust))
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				OK         bool   `json:"ok"`
				Error      string `json:"error"`
				Size       int64  `json:"size"`
				Signatures []map[string]any
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.OK != tc.wantOK || (got.Error == "") != tc.wantOK || got.Size != int64(len(tc.doc)) || len(got.Signatures) != 1 {
				t.Fatalf("JSON: %s", b)
			}
			s := got.Signatures[0]
			for _, k := range []string{"number", "signer", "agency", "fingerprint", "reason", "signing_time", "byte_range", "intact", "trusted", "covers_whole_file"} {
				if _, ok := s[k]; !ok {
					t.Errorf("key %q missing from %s", k, b)
				}
			}
			if s["agency"] != agencyA || s["reason"] != "Phê duyệt" {
				t.Errorf("JSON: %s", b)
			}
			// A report read back from JSON (a receipt) still judges itself.
			var back pdf.Report
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back.OK() != tc.wantOK {
				t.Errorf("report read back from JSON: OK() = %v", back.OK())
			}
		})
	}
}
