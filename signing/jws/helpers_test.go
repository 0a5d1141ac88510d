package jws_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/signing/jws"
)

// signer is a key with its chain (leaf, root); jws does not care who
// issued it.
type signer struct {
	name  string
	alg   string
	key   crypto.Signer
	chain []*x509.Certificate
}

var (
	signersOnce sync.Once
	signersList []*signer
)

// signers returns one signer per supported key type, made once per test
// binary (RSA generation is slow).
func signers(tb testing.TB) []*signer {
	tb.Helper()
	signersOnce.Do(func() {
		rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		root := cert(tb, &x509.Certificate{Subject: pkix.Name{CommonName: "jws test root"}, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign}, nil, rootKey, rootKey.Public())
		p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		rk, _ := rsa.GenerateKey(rand.Reader, 2048)
		for _, s := range []struct {
			name, alg string
			key       crypto.Signer
		}{{"P-256", jws.ES256, p256}, {"P-384", jws.ES384, p384}, {"Ed25519", jws.EdDSA, ed}, {"RSA-2048", jws.RS256, rk}} {
			leaf := cert(tb, &x509.Certificate{Subject: pkix.Name{CommonName: s.name}, KeyUsage: x509.KeyUsageDigitalSignature}, root, rootKey, s.key.Public())
			signersList = append(signersList, &signer{name: s.name, alg: s.alg, key: s.key, chain: []*x509.Certificate{leaf, root}})
		}
	})
	if len(signersList) != 4 {
		tb.Fatal("no signers")
	}
	return signersList
}

func cert(tb testing.TB, tmpl, parent *x509.Certificate, key crypto.Signer, pub crypto.PublicKey) *x509.Certificate {
	tb.Helper()
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signSegments signs header.payload (already encoded) with s's key as alg,
// as a hostile or foreign tool would: nothing is checked.
func signSegments(tb testing.TB, s *signer, hseg, pseg string) []byte {
	tb.Helper()
	input := hseg + "." + pseg
	return []byte(input + "." + b64(rawSign(tb, s, []byte(input))))
}

// rawSign signs input as JWS algorithm s.alg.
func rawSign(tb testing.TB, s *signer, input []byte) []byte {
	tb.Helper()
	switch k := s.key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, input)
	case *rsa.PrivateKey:
		d := sha256.Sum256(input)
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d[:])
		if err != nil {
			tb.Fatal(err)
		}
		return sig
	case *ecdsa.PrivateKey:
		var d []byte
		size := 32
		if s.alg == jws.ES384 {
			h := sha512.Sum384(input)
			d, size = h[:], 48
		} else {
			h := sha256.Sum256(input)
			d = h[:]
		}
		r, ss, err := ecdsa.Sign(rand.Reader, k, d)
		if err != nil {
			tb.Fatal(err)
		}
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		ss.FillBytes(out[size:])
		return out
	}
	tb.Fatalf("key %T", s.key)
	return nil
}

// header is the JSON of a protected header for s with extra parameters.
func header(tb testing.TB, s *signer, extra map[string]any) string {
	tb.Helper()
	h := map[string]any{"alg": s.alg, "typ": "JOSE", "x5c": x5c(s)}
	for k, v := range extra {
		if v == nil {
			delete(h, k)
			continue
		}
		h[k] = v
	}
	b, err := json.Marshal(h)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func x5c(s *signer) []string {
	var out []string
	for _, c := range s.chain {
		out = append(out, base64.StdEncoding.EncodeToString(c.Raw))
	}
	return out
}
