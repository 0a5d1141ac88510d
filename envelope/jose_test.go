package envelope_test

import (
	"crypto/x509"
	"errors"
	"reflect"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/docaxis/docaxis/envelope"
)

// joseAlgs are the algorithms the bus uses, as go-jose names them.
var joseAlgs = []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA, jose.RS256, jose.PS256}

// TestInteropVerifyWithGoJose checks the design's promise that any JOSE
// tool can check a docaxis envelope: go-jose, written independently,
// verifies Seal's output with the leaf's public key and validates the x5c
// chain it finds in the header.
func TestInteropVerifyWithGoJose(t *testing.T) {
	for _, s := range signers(t) {
		t.Run(s.name, func(t *testing.T) {
			e := validEnvelope()
			raw, err := envelope.Seal(e, s.key, s.chain)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := jose.ParseSignedCompact(string(raw), joseAlgs)
			if err != nil {
				t.Fatalf("go-jose cannot parse: %v", err)
			}
			payload, err := obj.Verify(s.chain[0].PublicKey)
			if err != nil {
				t.Fatalf("go-jose cannot verify: %v", err)
			}
			got, err := envelope.DecodePayload(payload)
			if err != nil || !reflect.DeepEqual(got, e) {
				t.Errorf("payload go-jose verified = %+v, %v", got, err)
			}
			if alg := obj.Signatures[0].Protected.Algorithm; alg != s.alg {
				t.Errorf("go-jose sees alg %s, want %s", alg, s.alg)
			}
			roots := x509.NewCertPool()
			roots.AddCert(s.chain[1])
			chains, err := obj.Signatures[0].Protected.Certificates(x509.VerifyOptions{
				Roots:     roots,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
			})
			if err != nil {
				t.Fatalf("go-jose x5c chain: %v", err)
			}
			if !chains[0][0].Equal(s.chain[0]) {
				t.Error("go-jose's x5c leaf is not the signer's certificate")
			}
			// With the wrong key go-jose must refuse too.
			other := signers(t)[(indexOf(s)+1)%len(signers(t))]
			if _, err := obj.Verify(other.chain[0].PublicKey); err == nil {
				t.Error("go-jose verified with another key")
			}
		})
	}
}

// TestInteropOpenGoJose checks the other direction: a DMS that signs with a
// JOSE library and puts its chain in x5c is accepted by Open.
func TestInteropOpenGoJose(t *testing.T) {
	for _, s := range signers(t) {
		algs := []string{s.alg}
		if s.alg == envelope.RS256 {
			algs = append(algs, envelope.PS256)
		}
		for _, alg := range algs {
			t.Run(s.name+"/"+alg, func(t *testing.T) {
				e := validEnvelope()
				opts := (&jose.SignerOptions{}).WithType("JOSE").WithContentType(envelope.ContentType).WithHeader("x5c", x5c(s.chain))
				signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: s.key}, opts)
				if err != nil {
					t.Fatal(err)
				}
				obj, err := signer.Sign(mustJSON(t, e))
				if err != nil {
					t.Fatal(err)
				}
				compact, err := obj.CompactSerialize()
				if err != nil {
					t.Fatal(err)
				}
				got, err := envelope.Open([]byte(compact))
				if err != nil {
					t.Fatalf("Open(go-jose JWS) = %v", err)
				}
				if got.Header.Alg != alg || !reflect.DeepEqual(got.Envelope, e) || !got.Chain[1].Equal(s.chain[1]) {
					t.Errorf("Open(go-jose JWS) = %+v", got)
				}
			})
		}
	}
}

// TestInteropGoJoseTampered checks that go-jose output that was changed in
// transit is refused as a bad signature, not as malformed input.
func TestInteropGoJoseTampered(t *testing.T) {
	s := signerFor(t, "P-256")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key}, (&jose.SignerOptions{}).WithHeader("x5c", x5c(s.chain)))
	if err != nil {
		t.Fatal(err)
	}
	e := validEnvelope()
	obj, err := signer.Sign(mustJSON(t, e))
	if err != nil {
		t.Fatal(err)
	}
	compact, _ := obj.CompactSerialize()
	h, _, sig := parts(t, []byte(compact))
	e.Subject = "Về việc khác"
	forged := h + "." + b64(mustJSON(t, e)) + "." + sig
	if _, err := envelope.Open([]byte(forged)); !errors.Is(err, envelope.ErrBadSignature) {
		t.Errorf("Open(tampered go-jose JWS) = %v, want ErrBadSignature", err)
	}
}

func indexOf(s *signer) int {
	for i, o := range signersList {
		if o == s {
			return i
		}
	}
	return -1
}
