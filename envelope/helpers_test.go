package envelope_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

// Agency codes used throughout the tests.
const (
	codeA = "000.00.00.G22" // Government Office
	codeB = "000.00.00.H41" // a province
	codeC = "000.00.00.H14"
)

// signer is a key with a certificate chain (leaf, root) for the envelope
// tests; envelope does not care who issued the chain, so the tests build
// their own instead of depending on signing.
type signer struct {
	name  string
	alg   string
	key   crypto.Signer
	chain []*x509.Certificate
}

// keyGens are the supported key types, in the order tests iterate them.
var keyGens = []struct {
	name, alg string
	key       func() (crypto.Signer, error)
}{
	{"P-256", envelope.ES256, func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }},
	{"P-384", envelope.ES384, func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }},
	{"Ed25519", envelope.EdDSA, func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}},
	{"RSA-2048", envelope.RS256, func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }},
}

var (
	signersMu   sync.Mutex
	signersMemo = map[string]*signer{}
	testRoot    *x509.Certificate
	testRootKey crypto.Signer
	signersList []*signer // in keyGens order, once all were made
)

// signers returns one signer per supported key type, all issued by one
// root. Keys are generated once per test binary: RSA generation is slow.
func signers(tb testing.TB) []*signer {
	tb.Helper()
	out := make([]*signer, len(keyGens))
	for i, g := range keyGens {
		out[i] = signerFor(tb, g.name)
	}
	signersMu.Lock()
	signersList = out
	signersMu.Unlock()
	return out
}

// signerFor returns the signer whose key is named name, generating only
// that key (fuzz workers start faster without an RSA key).
func signerFor(tb testing.TB, name string) *signer {
	tb.Helper()
	signersMu.Lock()
	defer signersMu.Unlock()
	if s, ok := signersMemo[name]; ok {
		return s
	}
	if testRoot == nil {
		testRoot, testRootKey = newRoot()
	}
	for _, g := range keyGens {
		if g.name != name {
			continue
		}
		k, err := g.key()
		if err != nil {
			tb.Fatal(err)
		}
		leaf := newLeaf(testRoot, testRootKey, k.Public(), g.name)
		s := &signer{name: g.name, alg: g.alg, key: k, chain: []*x509.Certificate{leaf, testRoot}}
		signersMemo[name] = s
		return s
	}
	tb.Fatalf("no signer %s", name)
	return nil
}

func newRoot() (*x509.Certificate, crypto.Signer) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "envelope test root"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c, key
}

func newLeaf(root *x509.Certificate, rootKey crypto.Signer, pub crypto.PublicKey, name string) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, pub, rootKey)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}

// validEnvelope returns a document envelope that passes Validate.
func validEnvelope() *envelope.Envelope {
	e := envelope.New(codeA, []string{codeB, codeC}, "Về việc thử nghiệm trục liên thông")
	e.Body = "Nội dung công văn"
	e.Document = &envelope.Document{CodeNumber: "123", CodeNotation: "VPCP-KGVX", Signer: &envelope.Signer{FullName: "Nguyễn Văn A"}}
	e.Attachments = []envelope.Attachment{{
		Name:      "công văn.pdf",
		MediaType: "application/pdf",
		Size:      1024,
		SHA256:    strings.Repeat("ab", 32),
		Key:       "sha256/" + strings.Repeat("ab", 32),
	}}
	return e
}

// b64 is the JWS segment encoding.
func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		tb.Fatalf("decode segment: %v", err)
	}
	return b
}

// parts splits a compact JWS into its three segments.
func parts(tb testing.TB, raw []byte) (h, p, s string) {
	tb.Helper()
	ps := strings.Split(string(raw), ".")
	if len(ps) != 3 {
		tb.Fatalf("want 3 parts, got %d", len(ps))
	}
	return ps[0], ps[1], ps[2]
}

// x5c returns the chain in the x5c form (standard base64 DER).
func x5c(chain []*x509.Certificate) []string {
	out := make([]string, len(chain))
	for i, c := range chain {
		out[i] = base64.StdEncoding.EncodeToString(c.Raw)
	}
	return out
}

// signRaw builds a compact JWS from an arbitrary header map and payload,
// signed by s with algorithm alg as the standard demands. It is how the
// tests craft inputs that Seal would never produce.
func signRaw(tb testing.TB, s *signer, header map[string]any, payload []byte) []byte {
	tb.Helper()
	hj, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	alg, _ := header["alg"].(string)
	return signSegments(tb, s, alg, b64(hj), b64(payload))
}

// signSegments signs two already encoded segments as they stand, so that
// a test can send bytes no encoder would produce with a valid signature.
func signSegments(tb testing.TB, s *signer, alg, hseg, pseg string) []byte {
	tb.Helper()
	input := hseg + "." + pseg
	return []byte(input + "." + b64(rawSignature(tb, s, alg, []byte(input))))
}

// rawSignature signs input the JWS way for s's key type.
func rawSignature(tb testing.TB, s *signer, alg string, input []byte) []byte {
	tb.Helper()
	// Seal's own output for a throwaway payload would tie the tests to the
	// code under test; sign by hand with the standard library instead.
	switch k := s.key.(type) {
	case *ecdsa.PrivateKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		d := digest(size, input)
		r, sv, err := ecdsa.Sign(rand.Reader, k, d)
		if err != nil {
			tb.Fatal(err)
		}
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		sv.FillBytes(out[size:])
		return out
	case ed25519.PrivateKey:
		return ed25519.Sign(k, input)
	case *rsa.PrivateKey:
		d := digest(32, input)
		if alg == envelope.PS256 {
			sig, err := rsa.SignPSS(rand.Reader, k, crypto.SHA256, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			if err != nil {
				tb.Fatal(err)
			}
			return sig
		}
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d)
		if err != nil {
			tb.Fatal(err)
		}
		return sig
	}
	tb.Fatalf("key %T", s.key)
	return nil
}

func digest(size int, b []byte) []byte {
	if size == 48 {
		h := crypto.SHA384.New()
		h.Write(b)
		return h.Sum(nil)
	}
	h := crypto.SHA256.New()
	h.Write(b)
	return h.Sum(nil)
}

// header returns the protected header Seal would write for s.
func header(s *signer) map[string]any {
	return map[string]any{"alg": s.alg, "typ": "JOSE", "cty": envelope.ContentType, "x5c": x5c(s.chain)}
}

// mustJSON marshals v or fails the test.
func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
