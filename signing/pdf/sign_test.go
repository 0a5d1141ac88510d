package pdf_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/pdf"
)

func TestSignAcceptedByVerifyAndPdfsig(t *testing.T) {
	ca := newCA(t, "docaxis test CA")
	trust := signing.NewTrust(ca.Cert)
	for _, kt := range []signing.KeyType{signing.KeyRSA, signing.KeyECDSA} {
		t.Run(string(kt), func(t *testing.T) {
			id := issue(t, ca, agencyA, "Bộ Nội vụ", kt)
			signed := signPDF(t, pdf.Minimal("Quyết định số 1"), id, pdf.SignOptions{
				Reason:   "Phê duyệt",
				Location: "Hà Nội",
			})
			rep := verifyPDF(t, signed, trust)
			if !rep.OK() {
				t.Fatalf("report not OK: %v", rep.Err())
			}
			s := rep.Signatures[0]
			if len(rep.Signatures) != 1 || s.Agency != agencyA || s.Signer != "Bộ Nội vụ" || s.Reason != "Phê duyệt" ||
				s.Location != "Hà Nội" || s.Name != "Bộ Nội vụ" || !s.CoversWholeFile || s.SigningTime == nil {
				t.Fatalf("unexpected report: %+v", rep.Signatures)
			}
			if d := time.Since(*s.SigningTime); d < -time.Minute || d > time.Minute {
				t.Errorf("signing time %v is not now", s.SigningTime)
			}

			sigs := pdfsig(t, signed)
			if len(sigs) != 1 || !sigs[0].Valid || !sigs[0].Total || sigs[0].Signer != "Bộ Nội vụ" {
				t.Fatalf("pdfsig: %+v", sigs)
			}
		})
	}
}

func TestCountersignTwoAgencies(t *testing.T) {
	ca := newCA(t, "docaxis test CA")
	trust := signing.NewTrust(ca.Cert)
	a := issue(t, ca, agencyA, "Bộ Tài chính", signing.KeyECDSA)
	b := issue(t, ca, agencyB, "UBND tỉnh Quảng Ninh", signing.KeyRSA)

	once := signPDF(t, pdf.Minimal("Công văn liên tịch"), a, pdf.SignOptions{Reason: "Ban hành"})
	twice := signPDF(t, once, b, pdf.SignOptions{Reason: "Đồng ý"})
	if !bytes.HasPrefix(twice, once) {
		t.Fatal("countersignature is not an incremental update of the signed file")
	}

	rep := verifyPDF(t, twice, trust)
	if !rep.OK() {
		t.Fatalf("report not OK: %v", rep.Err())
	}
	want := []struct {
		agency, reason string
		whole          bool
	}{{agencyA, "Ban hành", false}, {agencyB, "Đồng ý", true}}
	if len(rep.Signatures) != len(want) {
		t.Fatalf("%d signatures, want %d", len(rep.Signatures), len(want))
	}
	for i, w := range want {
		s := rep.Signatures[i]
		if s.Number != i+1 || s.Agency != w.agency || s.Reason != w.reason || !s.Intact || !s.Trusted || s.CoversWholeFile != w.whole {
			t.Errorf("signature %d: %+v, want agency %s reason %q whole file %v", i+1, s, w.agency, w.reason, w.whole)
		}
	}

	sigs := pdfsig(t, twice)
	if len(sigs) != 2 || !sigs[0].Valid || !sigs[1].Valid || sigs[0].Total || !sigs[1].Total {
		t.Fatalf("pdfsig: %+v", sigs)
	}
}

func TestSignTimestamp(t *testing.T) {
	ca := newCA(t, "docaxis test CA")
	otherCA := newCA(t, "someone else's CA")
	trust := signing.NewTrust(ca.Cert)
	id := issue(t, ca, agencyA, "Văn phòng Chính phủ", signing.KeyECDSA)

	tests := []struct {
		name        string
		tsaCA       *signing.CA
		wantTrusted bool
	}{
		{"trusted TSA", ca, true},
		{"untrusted TSA", otherCA, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tsa := newTSA(t, tc.tsaCA)
			before := time.Now().Add(-time.Second)
			signed := signPDF(t, pdf.Minimal("Thông báo"), id, pdf.SignOptions{TSA: tsa.URL + "/tsr"})
			rep := verifyPDF(t, signed, trust)
			if !rep.OK() {
				// The signer's chain is checked at the claimed time and
				// now when the timestamp cannot be trusted.
				t.Fatalf("report not OK: %v", rep.Err())
			}
			ts := rep.Signatures[0].Timestamp
			if ts == nil {
				t.Fatal("no timestamp in the report")
			}
			if !ts.Verified || ts.Trusted != tc.wantTrusted || ts.Authority != "docaxis test TSA" {
				t.Fatalf("timestamp %+v, want verified, trusted %v", ts, tc.wantTrusted)
			}
			if ts.Time.Before(before.Truncate(time.Second)) || ts.Time.After(time.Now()) {
				t.Errorf("timestamp time %v not within the test", ts.Time)
			}

			sigs := pdfsig(t, signed)
			if len(sigs) != 1 || !sigs[0].Valid {
				t.Fatalf("pdfsig: %+v", sigs)
			}
		})
	}
}

func TestCountersignTimestamped(t *testing.T) {
	// pdfsign reserves room for a timestamp token, so a timestamped
	// signature carries a long run of '0' padding, longer than a later
	// signature's placeholder when that one has no timestamp (documents
	// signed by other tools often carry such padding too).
	ca := newCA(t, "docaxis test CA")
	trust := signing.NewTrust(ca.Cert)
	tsa := newTSA(t, ca)
	a := issue(t, ca, agencyA, "Bộ Tư pháp", signing.KeyECDSA)
	b := issue(t, ca, agencyB, "Sở Tư pháp", signing.KeyRSA)

	tests := []struct{ first, second string }{
		{tsa.URL, ""},
		{tsa.URL, tsa.URL},
		{"", tsa.URL},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("TSA %v then %v", tc.first != "", tc.second != ""), func(t *testing.T) {
			once := signPDF(t, pdf.Minimal("Văn bản"), a, pdf.SignOptions{TSA: tc.first, Reason: "Ban hành"})
			twice := signPDF(t, once, b, pdf.SignOptions{TSA: tc.second, Reason: "Đồng ý"})
			rep := verifyPDF(t, twice, trust)
			if !rep.OK() || len(rep.Signatures) != 2 {
				t.Fatalf("report: %v %+v", rep.Err(), rep.Signatures)
			}
			for i, url := range []string{tc.first, tc.second} {
				ts := rep.Signatures[i].Timestamp
				if (url != "") != (ts != nil) || ts != nil && (!ts.Verified || !ts.Trusted) {
					t.Errorf("signature %d: timestamp %+v", i+1, ts)
				}
			}
			sigs := pdfsig(t, twice)
			if len(sigs) != 2 || !sigs[0].Valid || !sigs[1].Valid || !sigs[1].Total {
				t.Fatalf("pdfsig: %+v", sigs)
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	ca := newCA(t, "docaxis test CA")
	ecdsaID := issue(t, ca, agencyA, "Bộ Y tế", signing.KeyECDSA)
	other := issue(t, ca, agencyB, "Sở Y tế", signing.KeyECDSA)
	mismatched := &signing.Identity{Agency: agencyA, Key: other.Key, Chain: ecdsaID.Chain}
	doc := pdf.Minimal("x")

	tests := []struct {
		name string
		in   []byte
		id   *signing.Identity
		opts pdf.SignOptions
		want error // nil: any error
	}{
		{"Ed25519 key", doc, issue(t, ca, agencyA, "Bộ Y tế", signing.KeyEd25519), pdf.SignOptions{}, pdf.ErrUnsupportedKey},
		{"key of another certificate", doc, mismatched, pdf.SignOptions{}, nil},
		{"no identity", doc, nil, pdf.SignOptions{}, nil},
		{"not a PDF", []byte("hello, world"), ecdsaID, pdf.SignOptions{}, pdf.ErrNotPDF},
		{"truncated PDF", doc[:len(doc)/2], ecdsaID, pdf.SignOptions{}, pdf.ErrMalformed},
		{"TSA URL not http", doc, ecdsaID, pdf.SignOptions{TSA: "ftp://tsa.example/"}, pdf.ErrTimestamp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := pdf.Sign(context.Background(), bytes.NewReader(tc.in), int64(len(tc.in)), &out, tc.id, tc.opts)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("Sign wrote %d bytes despite failing", out.Len())
			}
			t.Log(err)
		})
	}
}

func TestSignTSAFailures(t *testing.T) {
	ca := newCA(t, "docaxis test CA")
	id := issue(t, ca, agencyA, "Bộ Công an", signing.KeyECDSA)
	doc := pdf.Minimal("x")

	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("not a timestamp response"))
	}))
	defer garbage.Close()
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a client going away only once the body is read.
		_, _ = io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	}))
	defer hanging.Close()

	tests := []struct {
		name    string
		url     string
		timeout time.Duration
		want    error
	}{
		{"error status", failing.URL, 0, pdf.ErrTimestamp},
		{"garbage answer", garbage.URL, 0, pdf.ErrTimestamp},
		{"no answer before the deadline", hanging.URL, 300 * time.Millisecond, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			start := time.Now()
			var out bytes.Buffer
			err := pdf.Sign(ctx, bytes.NewReader(doc), int64(len(doc)), &out, id, pdf.SignOptions{TSA: tc.url})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("Sign wrote %d bytes despite failing", out.Len())
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("Sign took %v", d)
			}
			t.Log(err)
		})
	}
}

func TestSignVietnameseText(t *testing.T) {
	ca := newCA(t, "docaxis test CA")
	trust := signing.NewTrust(ca.Cert)
	id := issue(t, ca, agencyA, "Bộ Giáo dục và Đào tạo", signing.KeyECDSA)
	// ĩ is U+0129: its UTF-16 code unit holds the byte ')', which pdfsign
	// would write unescaped.
	tests := []struct{ in, want string }{
		{"Thực hiện nghĩa vụ (bản chính)", "Thực hiện nghĩa vụ (bản chính)"},
		{"Kĩ thuật", "Kĩ thuật"},
		{"Phụ lục 2)", "Phụ lục 2）"},
		{"plain ASCII (with \\ and parens", "plain ASCII (with \\ and parens"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			signed := signPDF(t, pdf.Minimal("x"), id, pdf.SignOptions{Reason: tc.in, ContactInfo: "vanthu@moet.gov.vn"})
			rep := verifyPDF(t, signed, trust)
			if !rep.OK() {
				t.Fatalf("report not OK: %v", rep.Err())
			}
			if got := rep.Signatures[0].Reason; got != tc.want {
				t.Errorf("reason %q, want %q", got, tc.want)
			}
			if !strings.Contains(string(signed), "vanthu@moet.gov.vn") {
				t.Error("contact info missing")
			}
			if sigs := pdfsig(t, signed); len(sigs) != 1 || !sigs[0].Valid {
				t.Fatalf("pdfsig: %+v", sigs)
			}
		})
	}
}
