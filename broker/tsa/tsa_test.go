package tsa_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/tsa"
	"github.com/docaxis/docaxis/signing"
)

func newAuthority(t testing.TB) (*signing.CA, *tsa.Authority) {
	t.Helper()
	ca, err := signing.NewCA("tsa test CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a, err := tsa.NewAuthority(ca, "test TSA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca, a
}

// Openssl is the independent check of the tokens; in CI its absence is a
// failure, elsewhere a skip.
func requireOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl not installed: the tokens are checked with openssl ts in CI")
		}
		t.Skip("openssl not installed")
	}
	return p
}

func TestTokenRoundTrip(t *testing.T) {
	_, a := newAuthority(t)
	srv := httptest.NewServer(a)
	defer srv.Close()
	c, err := tsa.NewClient([]string{srv.URL}, a.Roots())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("checkpoint bytes")
	tok, err := c.Timestamp(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	if err := tok.Covers(data); err != nil {
		t.Fatal(err)
	}
	if err := tok.Covers([]byte("other")); !errors.Is(err, tsa.ErrImprint) {
		t.Fatalf("other data: %v, want ErrImprint", err)
	}
	again, err := tsa.ParseResponse(tok.Raw)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if err := again.Verify(sum[:], a.Roots()); err != nil {
		t.Fatal(err)
	}
	if time.Since(tok.Time) > time.Minute {
		t.Fatalf("token time %s", tok.Time)
	}
	if st := c.Status(); st.URL != srv.URL || st.TSA != "test TSA" {
		t.Fatalf("status %+v", st)
	}
}

func TestOpenSSLVerifiesTokens(t *testing.T) {
	ossl := requireOpenSSL(t)
	_, a := newAuthority(t)
	dir := t.TempDir()
	data := []byte("docaxis checkpoint")
	q, err := tsa.NewRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := a.Sign(q)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tsr, dat, ca := write("t.tsr", resp), write("data", data), write("ca.pem", signing.EncodeCerts(a.Roots()...))
	out, err := exec.Command(ossl, "ts", "-verify", "-in", tsr, "-data", dat, "-CAfile", ca).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verification: OK") {
		t.Fatalf("openssl ts -verify: %v\n%s", err, out)
	}
	out, err = exec.Command(ossl, "ts", "-reply", "-in", tsr, "-text").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Status: Granted") || !strings.Contains(string(out), "Nonce:") {
		t.Fatalf("openssl ts -reply -text: %v\n%s", err, out)
	}
	// Other data: openssl refuses too.
	other := write("other", []byte("forged"))
	if out, err := exec.Command(ossl, "ts", "-verify", "-in", tsr, "-data", other, "-CAfile", ca).CombinedOutput(); err == nil {
		t.Fatalf("openssl verified a token over other data:\n%s", out)
	}
	// And docaxis reads a reply openssl made for a request openssl made.
	key := write("k.pem", mustKey(t, a))
	cert := write("c.pem", signing.EncodeCerts(a.Chain[0]))
	cfg := write("ts.cnf", []byte("[tsa]\ndefault_tsa = t\n[t]\nserial = "+filepath.Join(dir, "serial")+"\ndefault_policy = 1.2.3.4.1\ndigests = sha256\naccuracy = secs:1\ness_cert_id_alg = sha256\nsigner_digest = sha256\n"))
	_ = os.WriteFile(filepath.Join(dir, "serial"), []byte("01\n"), 0o600)
	tsq := filepath.Join(dir, "o.tsq")
	if out, err := exec.Command(ossl, "ts", "-query", "-data", dat, "-sha256", "-cert", "-out", tsq).CombinedOutput(); err != nil {
		t.Fatalf("openssl ts -query: %v\n%s", err, out)
	}
	raw, _ := os.ReadFile(tsq)
	if _, err := tsa.ParseRequest(raw); err != nil {
		t.Fatalf("openssl's request: %v", err)
	}
	otsr := filepath.Join(dir, "o.tsr")
	if out, err := exec.Command(ossl, "ts", "-reply", "-config", cfg, "-queryfile", tsq, "-inkey", key, "-signer", cert, "-out", otsr).CombinedOutput(); err != nil {
		t.Fatalf("openssl ts -reply: %v\n%s", err, out)
	}
	raw, _ = os.ReadFile(otsr)
	tok, err := tsa.ParseResponse(raw)
	if err != nil {
		t.Fatalf("openssl's token: %v", err)
	}
	if err := tok.Covers(data); err != nil {
		t.Fatal(err)
	}
	if err := tok.VerifySigner(a.Roots()); err != nil {
		t.Fatal(err)
	}
}

func mustKey(t *testing.T, a *tsa.Authority) []byte {
	b, err := signing.EncodeKey(a.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBadTokens: every way a TSA's answer can be wrong is named.
func TestBadTokens(t *testing.T) {
	_, a := newAuthority(t)
	_, other := newAuthority(t)
	data := []byte("checkpoint")
	q, _ := tsa.NewRequest(data)
	good, err := a.Sign(q)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-10] ^= 1
	tests := []struct {
		name string
		resp []byte
		want error
		step string // parse, check (against q), trust
	}{
		{"garbage", []byte("<html>busy</html>"), tsa.ErrMalformed, "parse"},
		{"empty", nil, tsa.ErrMalformed, "parse"},
		{"truncated", good[:len(good)/2], tsa.ErrMalformed, "parse"},
		{"byte changed", flipped, nil, "parse"},
		{"untrusted TSA", must(other.Sign(q)), tsa.ErrUntrusted, "trust"},
		{"other data", must(a.Sign(&tsa.Request{Hash: q.Hash, Digest: make([]byte, 32), Nonce: q.Nonce, CertReq: true})), tsa.ErrImprint, "check"},
		{"replayed nonce", must(a.Sign(&tsa.Request{Hash: q.Hash, Digest: q.Digest, CertReq: true})), tsa.ErrNonce, "check"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tsa.ParseResponse(tc.resp)
			if tc.step == "parse" {
				if err == nil {
					t.Fatal("accepted")
				}
				if tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("%v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch tc.step {
			case "check":
				err = q.Check(tok)
			case "trust":
				err = tok.VerifySigner(a.Roots())
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
		})
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestFailOver: a TSA that is down or answers garbage hands over to the
// next; the status names the one in use.
func TestFailOver(t *testing.T) {
	_, a := newAuthority(t)
	var garbageHits atomic.Int32
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		garbageHits.Add(1)
		w.Header().Set("Content-Type", tsa.ReplyMediaType)
		w.Write([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	}))
	defer garbage.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	good := httptest.NewServer(a)
	defer good.Close()
	c, err := tsa.NewClient([]string{down.URL, garbage.URL, good.URL}, a.Roots(), tsa.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Timestamp(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); st.URL != good.URL || st.Failures != 0 {
		t.Fatalf("status %+v, want %s in use", st, good.URL)
	}
	// The one that worked is asked first next time.
	hits := garbageHits.Load()
	if _, err := c.Timestamp(context.Background(), []byte("y")); err != nil {
		t.Fatal(err)
	}
	if garbageHits.Load() != hits {
		t.Fatal("asked the failing TSA again before the working one")
	}
	good.Close()
	_, err = c.Timestamp(context.Background(), []byte("z"))
	if !errors.Is(err, tsa.ErrUnavailable) || !strings.Contains(err.Error(), garbage.URL) {
		t.Fatalf("all down: %v", err)
	}
	if st := c.Status(); st.Failures != 1 || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
}

// TestHTTPSWithCustomCA: a TSA over TLS whose certificate a private CA
// issued (--tsa-ca).
func TestHTTPSWithCustomCA(t *testing.T) {
	_, a := newAuthority(t)
	srv := httptest.NewTLSServer(a)
	defer srv.Close()
	c, err := tsa.NewClient([]string{srv.URL}, a.Roots())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Timestamp(context.Background(), []byte("x")); !errors.Is(err, tsa.ErrUnavailable) {
		t.Fatalf("untrusted TLS certificate: %v", err)
	}
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c, err = tsa.NewClient([]string{srv.URL}, a.Roots(), tsa.WithTLSRoots(pool))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Timestamp(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestOpenAuthorityKeepsKey(t *testing.T) {
	ca, err := signing.NewCA("ca", 24*365*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	a1, err := tsa.OpenAuthority(dir, ca)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := tsa.OpenAuthority(dir, ca)
	if err != nil {
		t.Fatal(err)
	}
	if !a1.Chain[0].Equal(a2.Chain[0]) {
		t.Fatal("a second open made a new TSA certificate")
	}
	if err := tsa.IsTimeStampingCertificate(a1.Chain[0]); err != nil {
		t.Fatal(err)
	}
}
