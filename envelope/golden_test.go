package envelope_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing/signingtest"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden from the current code")

// goldenEnvelope is the envelope every golden file seals: fixed id and
// time, so that its payload bytes are fixed.
func goldenEnvelope() *envelope.Envelope {
	e := validEnvelope()
	e.ID = "0190a5d4-7c3e-7a8b-9c1d-2e3f4a5b6c7d"
	e.Created = time.Date(2026, 12, 4, 20, 0, 0, 123456789, time.UTC)
	return e
}

// TestGoldenSeal holds Seal and Sign to the bytes the envelope codec made
// before the JWS layer moved to signing/jws (testdata/golden, written by
// that code with -update): same header, same payload, and for the
// deterministic algorithms (EdDSA, RS256) the same signature. The old
// bytes still open.
func TestGoldenSeal(t *testing.T) {
	for _, g := range keyGens {
		if g.name == "P-384" {
			continue
		}
		t.Run(g.name, func(t *testing.T) {
			name := strings.ToLower(g.name)
			if *updateGolden {
				s := signerFor(t, g.name)
				raw, err := envelope.Seal(goldenEnvelope(), s.key, s.chain)
				if err != nil {
					t.Fatal(err)
				}
				der, err := x509.MarshalPKCS8PrivateKey(s.key)
				if err != nil {
					t.Fatal(err)
				}
				var certs []byte
				for _, c := range s.chain {
					certs = append(certs, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
				}
				signingtest.WriteGolden(t, name+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
				signingtest.WriteGolden(t, name+".crt", certs)
				signingtest.WriteGolden(t, name+".jws", raw)
			}
			key, chain := readGoldenPair(t, name)
			want := signingtest.ReadGolden(t, name+".jws")
			got, err := envelope.Seal(goldenEnvelope(), key, chain)
			if err != nil {
				t.Fatal(err)
			}
			compareJWS(t, got, want, g.alg != envelope.ES256)
			if _, err := envelope.Open(want); err != nil {
				t.Errorf("Open(golden) = %v", err)
			}
			if _, err := envelope.Open(got); err != nil {
				t.Errorf("Open(new) = %v", err)
			}
		})
	}
}

// compareJWS compares the signed parts of two compact JWS, and the
// signatures too when the algorithm is deterministic.
func compareJWS(t *testing.T, got, want []byte, deterministic bool) {
	t.Helper()
	if deterministic {
		if !bytes.Equal(got, want) {
			t.Errorf("signed bytes differ:\n got %s\nwant %s", got, want)
		}
		return
	}
	g, w := got[:bytes.LastIndexByte(got, '.')], want[:bytes.LastIndexByte(want, '.')]
	if !bytes.Equal(g, w) {
		t.Errorf("signing input differs:\n got %s\nwant %s", g, w)
	}
}

func readGoldenPair(t *testing.T, name string) (crypto.Signer, []*x509.Certificate) {
	t.Helper()
	kb, _ := pem.Decode(signingtest.ReadGolden(t, name+".key"))
	if kb == nil {
		t.Fatalf("%s.key: no PEM", name)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	for rest := signingtest.ReadGolden(t, name+".crt"); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	return k.(crypto.Signer), chain
}
