package signing_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

func TestNewCA(t *testing.T) {
	ca, err := signing.NewCA("Test CA", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := ca.Cert
	if !c.IsCA || !c.BasicConstraintsValid || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA certificate is not a CA: IsCA=%v usage=%v", c.IsCA, c.KeyUsage)
	}
	if c.Subject.CommonName != "Test CA" {
		t.Errorf("subject = %q", c.Subject.CommonName)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("CA certificate is not self-signed: %v", err)
	}
	// Valid now (with room for clock skew) and for the asked duration from
	// now: the skew allowance must not eat into it.
	now := time.Now()
	if now.Before(c.NotBefore.Add(time.Minute)) || c.NotAfter.Before(now.Add(48*time.Hour-time.Minute)) {
		t.Errorf("validity %s .. %s, want from before now to 48h from now", c.NotBefore, c.NotAfter)
	}
	short, err := signing.NewCA("Short CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !short.Cert.NotAfter.After(now.Add(50 * time.Minute)) {
		t.Errorf("a CA for an hour expires at %s", short.Cert.NotAfter)
	}
	if pub, ok := ca.Key.Public().(*ecdsa.PublicKey); !ok || !pub.Equal(c.PublicKey) {
		t.Error("CA key does not match its certificate")
	}
	other, err := signing.NewCA("Test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if other.Cert.SerialNumber.Cmp(c.SerialNumber) == 0 {
		t.Error("two CAs share a serial number")
	}
}

func TestIssue(t *testing.T) {
	ca := sharedCA(t)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, kt := range append(keyTypes, "") {
		t.Run(string(kt), func(t *testing.T) {
			id := identity(t, codeB, kt)
			leaf := id.Certificate()
			if id.Agency != codeB || signing.AgencyOf(leaf) != codeB {
				t.Errorf("identity agency %q, certificate binds %q; want %s", id.Agency, signing.AgencyOf(leaf), codeB)
			}
			if leaf.Subject.SerialNumber != codeB || leaf.Subject.CommonName != "Agency "+codeB {
				t.Errorf("subject = %+v", leaf.Subject)
			}
			if len(id.Chain) != 2 || !id.Chain[1].Equal(ca.Cert) {
				t.Error("chain is not leaf, CA")
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("leaf does not chain to the CA: %v", err)
			}
			if leaf.IsCA || leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
				t.Errorf("leaf usage: IsCA=%v usage=%v", leaf.IsCA, leaf.KeyUsage)
			}
			want := map[signing.KeyType]string{signing.KeyECDSA: envelope.ES256, "": envelope.ES256, signing.KeyEd25519: envelope.EdDSA, signing.KeyRSA: envelope.RS256}[kt]
			if alg, err := envelope.AlgorithmFor(id.Key.Public()); err != nil || alg != want {
				t.Errorf("key algorithm %s, %v; want %s", alg, err, want)
			}
			switch k := id.Key.Public().(type) {
			case *ecdsa.PublicKey:
				if !k.Equal(leaf.PublicKey) {
					t.Error("key does not match the certificate")
				}
			case ed25519.PublicKey:
				if !k.Equal(leaf.PublicKey) {
					t.Error("key does not match the certificate")
				}
			case *rsa.PublicKey:
				if !k.Equal(leaf.PublicKey) || k.N.BitLen() != 2048 {
					t.Error("key does not match the certificate or is not 2048 bits")
				}
			}
		})
	}
}

func TestIssueOptions(t *testing.T) {
	ca := sharedCA(t)
	nb := time.Now().Add(-72 * time.Hour).Truncate(time.Second)
	id, err := ca.Issue(codeC, "", signing.IssueOptions{NotBefore: nb, Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	leaf := id.Certificate()
	if !leaf.NotBefore.Equal(nb) || !leaf.NotAfter.Equal(nb.Add(24*time.Hour)) {
		t.Errorf("validity %s .. %s, want %s + 24h", leaf.NotBefore, leaf.NotAfter, nb)
	}
	if leaf.Subject.CommonName != codeC {
		t.Errorf("an unnamed agency's certificate is named %q, want its code", leaf.Subject.CommonName)
	}
	// Defaults: valid now, for about two years.
	id = identity(t, codeC, signing.KeyEd25519)
	if d := id.Certificate().NotAfter.Sub(id.Certificate().NotBefore); d < 700*24*time.Hour {
		t.Errorf("default validity %s", d)
	}
	// A short validity from the default start counts from now, not from
	// the start backdated for clock skew.
	id, err = ca.Issue(codeC, "", signing.IssueOptions{KeyType: signing.KeyEd25519, Validity: 30 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if leaf := id.Certificate(); !leaf.NotBefore.Before(time.Now()) || !leaf.NotAfter.After(time.Now().Add(25*time.Minute)) {
		t.Errorf("30 minutes from the default start: %s .. %s", leaf.NotBefore, leaf.NotAfter)
	}
}

func TestIssueRefuses(t *testing.T) {
	ca := sharedCA(t)
	if _, err := ca.Issue(codeA, "x", signing.IssueOptions{KeyType: "dsa"}); err == nil {
		t.Error("Issue with an unknown key type succeeded")
	}
	// The code ends up in a URI and a keystore path: refuse what cannot.
	for _, code := range []string{"", "a\nb", "../../etc", "a b", "a_b"} {
		if _, err := ca.Issue(code, "x", signing.IssueOptions{KeyType: signing.KeyEd25519}); !errors.Is(err, envelope.ErrInvalidCode) {
			t.Errorf("Issue(%q) = %v, want ErrInvalidCode", code, err)
		}
	}
	if _, err := signing.NewKey("dsa"); err == nil {
		t.Error(`NewKey("dsa") succeeded`)
	}
}

func TestIssueServer(t *testing.T) {
	ca := sharedCA(t)
	cert, key, err := ca.IssueServer([]string{"localhost", "127.0.0.1", "bus.example.vn"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, host := range []string{"localhost", "127.0.0.1", "bus.example.vn"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("IP SANs = %v", cert.IPAddresses)
	}
	if pub, ok := key.Public().(*ecdsa.PublicKey); !ok || !pub.Equal(cert.PublicKey) {
		t.Error("server key does not match its certificate")
	}
	if signing.AgencyOf(cert) != "" {
		t.Error("a server certificate binds an agency")
	}
}
