package signing_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// importedCert returns a key and a certificate issued by ca that, like an
// agency's existing certificate, carries no docaxis agency URI.
func importedCert(t testing.TB, ca *signing.CA, name string) (*ecdsa.PrivateKey, []*x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"Ban Cơ yếu Chính phủ"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, []*x509.Certificate{cert, ca.Cert}
}

func TestNewIdentity(t *testing.T) {
	a := identity(t, codeA, signing.KeyECDSA)
	b := identity(t, codeB, signing.KeyEd25519)
	impKey, impChain := importedCert(t, sharedCA(t), "Sở Nội vụ")

	id, err := signing.NewIdentity(codeA, a.Key, a.Chain)
	if err != nil || id.Agency != codeA || id.Certificate() != a.Chain[0] {
		t.Fatalf("NewIdentity(matching) = %+v, %v", id, err)
	}
	// An imported certificate binds no code: the operator names the agency.
	id, err = signing.NewIdentity(codeC, impKey, impChain)
	if err != nil || id.Agency != codeC {
		t.Fatalf("NewIdentity(imported) = %+v, %v", id, err)
	}

	tests := []struct {
		name   string
		agency string
		id     func() (*signing.Identity, error)
		want   error
		fault  string
	}{
		{"key of another certificate", codeA, func() (*signing.Identity, error) { return signing.NewIdentity(codeA, b.Key, a.Chain) }, nil, "does not match"},
		{"key of same type, other certificate", codeA, func() (*signing.Identity, error) {
			return signing.NewIdentity(codeA, identity(t, codeC, signing.KeyECDSA).Key, a.Chain)
		}, nil, "does not match"},
		{"certificate bound to another agency", codeB, func() (*signing.Identity, error) { return signing.NewIdentity(codeB, a.Key, a.Chain) }, signing.ErrAgencyMismatch, codeA},
		{"empty chain", codeA, func() (*signing.Identity, error) { return signing.NewIdentity(codeA, a.Key, nil) }, nil, "empty"},
		{"key the bus cannot sign with", codeA, func() (*signing.Identity, error) {
			k, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			ca := sharedCA(t)
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, k.Public(), ca.Key)
			if err != nil {
				t.Fatal(err)
			}
			c, _ := x509.ParseCertificate(der)
			return signing.NewIdentity(codeA, k, []*x509.Certificate{c})
		}, nil, "P-521"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.id()
			if err == nil {
				t.Fatalf("NewIdentity = %+v, want an error", id)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("NewIdentity = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.fault) {
				t.Errorf("NewIdentity = %q, want it to mention %q", err, tt.fault)
			}
		})
	}
}

func TestIdentitySeal(t *testing.T) {
	a := identity(t, codeA, signing.KeyECDSA)
	raw, err := a.Seal(document(codeA, codeB))
	if err != nil {
		t.Fatal(err)
	}
	s, err := envelope.Open(raw)
	if err != nil || s.Envelope.From != codeA || !s.Chain[0].Equal(a.Certificate()) {
		t.Fatalf("Open(Identity.Seal) = %+v, %v", s, err)
	}
	// An identity signs only as its own agency.
	if _, err := a.Seal(document(codeB, codeC)); !errors.Is(err, signing.ErrAgencyMismatch) {
		t.Errorf("Seal(from another agency) = %v, want ErrAgencyMismatch", err)
	}
	// Nor outside its certificate's validity: the recipient would refuse.
	e := document(codeA, codeB)
	e.Created = a.Certificate().NotBefore.Add(-time.Minute)
	if _, err := a.Seal(e); !errors.Is(err, signing.ErrExpired) {
		t.Errorf("Seal(before the certificate) = %v, want ErrExpired", err)
	}
	e = document(codeA, codeB)
	e.Subject = ""
	if _, err := a.Seal(e); !errors.Is(err, envelope.ErrInvalid) {
		t.Errorf("Seal(invalid) = %v, want ErrInvalid", err)
	}
	// Validate options reach the envelope's validation.
	e = document(codeA, "PILOT-1")
	if _, err := a.Seal(e); !errors.Is(err, envelope.ErrInvalid) {
		t.Errorf("Seal(to an unregistered code) = %v, want ErrInvalid", err)
	}
	if _, err := a.Seal(e, envelope.AllowCodes(func(c string) bool { return c == "PILOT-1" })); err != nil {
		t.Errorf("Seal(to a registered code) = %v", err)
	}
}

func TestAgencyOf(t *testing.T) {
	a := identity(t, codeA, signing.KeyECDSA)
	if got := signing.AgencyOf(a.Certificate()); got != codeA {
		t.Errorf("AgencyOf = %q", got)
	}
	if got := signing.AgencyOf(sharedCA(t).Cert); got != "" {
		t.Errorf("AgencyOf(CA) = %q, want none", got)
	}
	_, imp := importedCert(t, sharedCA(t), "x")
	if got := signing.AgencyOf(imp[0]); got != "" {
		t.Errorf("AgencyOf(imported) = %q, want none", got)
	}
}
