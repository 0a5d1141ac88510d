package signing_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/signing"
)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// TestParseKey imports keys in the forms agencies' tools write them:
// PKCS#8 (any key), PKCS#1 (openssl genrsa) and SEC 1 (openssl ecparam).
func TestParseKey(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemBlock("PRIVATE KEY", der)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecParams := pemBlock("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	cert := signing.EncodeCerts(sharedCA(t).Cert)
	tests := []struct {
		name string
		pem  []byte
		want crypto.PublicKey
	}{
		{"RSA PKCS#8", pkcs8(rsaKey), rsaKey.Public()},
		{"RSA PKCS#1", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), rsaKey.Public()},
		{"ECDSA PKCS#8", pkcs8(ecKey), ecKey.Public()},
		{"ECDSA SEC 1", pemBlock("EC PRIVATE KEY", sec1), ecKey.Public()},
		{"ECDSA SEC 1 after EC PARAMETERS", append(ecParams, pemBlock("EC PRIVATE KEY", sec1)...), ecKey.Public()},
		{"Ed25519 PKCS#8", pkcs8(edKey), edKey.Public()},
		{"key after a certificate", append(bytes.Clone(cert), pkcs8(edKey)...), edKey.Public()},
		{"key with text around", []byte("Bag Attributes\n" + string(pkcs8(ecKey)) + "trailer\n"), ecKey.Public()},
		{"own encoding", mustEncodeKey(t, ecKey), ecKey.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := signing.ParseKey(tt.pem)
			if err != nil {
				t.Fatalf("ParseKey: %v", err)
			}
			if pub, ok := k.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(tt.want) {
				t.Errorf("ParseKey gave another key (%T)", k)
			}
		})
	}
	bad := []struct {
		name, pem, fault string
	}{
		{"empty", "", "no PEM private key"},
		{"not PEM", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "no PEM private key"},
		{"only a certificate", string(cert), "no PEM private key"},
		{"PKCS#8 garbage", string(pemBlock("PRIVATE KEY", []byte("garbage"))), "PRIVATE KEY"},
		{"PKCS#1 garbage", string(pemBlock("RSA PRIVATE KEY", []byte("garbage"))), "RSA PRIVATE KEY"},
		{"SEC 1 garbage", string(pemBlock("EC PRIVATE KEY", []byte("garbage"))), "EC PRIVATE KEY"},
		{"SEC 1 in a PKCS#1 block", string(pemBlock("RSA PRIVATE KEY", sec1)), "RSA PRIVATE KEY"},
		{"public key only", string(pemBlock("PUBLIC KEY", mustPKIX(t, ecKey.Public()))), "no PEM private key"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			k, err := signing.ParseKey([]byte(tt.pem))
			if err == nil {
				t.Fatalf("ParseKey = %T, want an error", k)
			}
			if !strings.Contains(err.Error(), tt.fault) {
				t.Errorf("ParseKey = %q, want it to mention %q", err, tt.fault)
			}
		})
	}
}

func TestEncodeKeyRoundTrip(t *testing.T) {
	for _, kt := range keyTypes {
		k := identity(t, codeA, kt).Key
		p, err := signing.EncodeKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(p, []byte("-----BEGIN PRIVATE KEY-----")) {
			t.Errorf("%s: EncodeKey does not write PKCS#8", kt)
		}
		back, err := signing.ParseKey(p)
		if err != nil {
			t.Fatal(err)
		}
		if !back.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
			t.Errorf("%s: key changed in a round trip", kt)
		}
	}
}

func TestCertsRoundTrip(t *testing.T) {
	id := identity(t, codeA, signing.KeyECDSA)
	p := signing.EncodeCerts(id.Chain...)
	if bytes.Count(p, []byte("-----BEGIN CERTIFICATE-----")) != 2 {
		t.Fatalf("EncodeCerts wrote %s", p)
	}
	back, err := signing.ParseCerts(append([]byte("junk before\n"), p...))
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || !back[0].Equal(id.Chain[0]) || !back[1].Equal(id.Chain[1]) {
		t.Error("chain changed in a round trip (order or content)")
	}
	// Other blocks (a key next to the chain) are skipped.
	kp, _ := signing.EncodeKey(id.Key)
	if got, err := signing.ParseCerts(append(kp, p...)); err != nil || len(got) != 2 {
		t.Errorf("ParseCerts with a key block = %d, %v", len(got), err)
	}
	for name, in := range map[string][]byte{
		"empty":      nil,
		"key only":   kp,
		"bad DER":    pemBlock("CERTIFICATE", []byte("not DER")),
		"bad second": append(bytes.Clone(p), pemBlock("CERTIFICATE", []byte{0x30, 0x00})...),
	} {
		if got, err := signing.ParseCerts(in); err == nil {
			t.Errorf("ParseCerts(%s) = %d certificates, want an error", name, len(got))
		}
	}
}

func mustEncodeKey(t *testing.T, k crypto.Signer) []byte {
	t.Helper()
	p, err := signing.EncodeKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustPKIX(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
