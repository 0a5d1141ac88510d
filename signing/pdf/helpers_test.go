package pdf_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/pdf"
)

const (
	agencyA = "000.00.00.G22" // a ministry
	agencyB = "000.00.01.H29" // a province
)

func newCA(t testing.TB, name string) *signing.CA {
	t.Helper()
	ca, err := signing.NewCA(name, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t testing.TB, ca *signing.CA, agency, name string, kt signing.KeyType) *signing.Identity {
	t.Helper()
	id, err := ca.Issue(agency, name, signing.IssueOptions{KeyType: kt})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func signPDF(t testing.TB, in []byte, id *signing.Identity, opts pdf.SignOptions) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := pdf.Sign(context.Background(), bytes.NewReader(in), int64(len(in)), &out, id, opts); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return out.Bytes()
}

func verifyPDF(t testing.TB, b []byte, trust *signing.Trust) *pdf.Report {
	t.Helper()
	rep, err := pdf.Verify(bytes.NewReader(b), int64(len(b)), trust)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

// pdfsigSig is what poppler's pdfsig says about one signature.
type pdfsigSig struct {
	Signer string
	Valid  bool // "Signature Validation: Signature is Valid."
	Total  bool // "Total document signed"
	Status string
}

// pdfsig runs poppler's pdfsig on b as an independent verifier. It passes
// -nocert: pdfsig checks certificates against an NSS database where our
// test CA is not, and would report "Certificate issuer isn't Trusted"
// while still judging the signature itself; -nocert keeps it offline and
// independent of the machine's NSS state. What is checked is the
// "Signature Validation" line (the CMS over the signed ranges) and the
// "Total document signed" line; trust in our CA is pdf.Verify's job.
//
// Without pdfsig the test is skipped, or fails when CI=true.
func pdfsig(t *testing.T, b []byte) []pdfsigSig {
	t.Helper()
	bin, err := exec.LookPath("pdfsig")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pdfsig (poppler-utils) is required when CI=true: %v", err)
		}
		t.Skipf("pdfsig (poppler-utils) not installed: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "doc.pdf")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-nocert", "-no-ocsp", path)
	cmd.Env = append(os.Environ(), "HOME="+dir) // keep NSS state out of the real home
	out, _ := cmd.CombinedOutput()              // non-zero exit on unsigned or broken files
	var sigs []pdfsigSig
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "Signature #"):
			sigs = append(sigs, pdfsigSig{})
		case len(sigs) == 0:
		case strings.HasPrefix(line, "- Signer Certificate Common Name:"):
			sigs[len(sigs)-1].Signer = strings.TrimSpace(strings.TrimPrefix(line, "- Signer Certificate Common Name:"))
		case strings.HasPrefix(line, "- Signature Validation:"):
			st := strings.TrimSpace(strings.TrimPrefix(line, "- Signature Validation:"))
			sigs[len(sigs)-1].Status = st
			sigs[len(sigs)-1].Valid = st == "Signature is Valid."
		case line == "- Total document signed":
			sigs[len(sigs)-1].Total = true
		}
	}
	t.Logf("pdfsig:\n%s", out)
	return sigs
}

// newTSA starts an RFC 3161 responder on loopback whose certificate (with
// the timeStamping extended key usage) is issued by ca.
func newTSA(t *testing.T, ca *signing.CA) *httptest.Server {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "docaxis test TSA"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := timestamp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ts := &timestamp.Timestamp{
			HashAlgorithm:     req.HashAlgorithm,
			HashedMessage:     req.HashedMessage,
			Time:              time.Now().UTC().Truncate(time.Second),
			Nonce:             req.Nonce,
			Policy:            asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1},
			AddTSACertificate: req.Certificates,
		}
		resp, err := ts.CreateResponseWithOpts(cert, key, crypto.SHA256)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/timestamp-reply")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	return srv
}
