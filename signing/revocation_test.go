package signing_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/signing"
)

// twinCA makes a CA with the same name as another: names are not
// identities, keys are.
func twinCA(t *testing.T, name string) *signing.CA {
	t.Helper()
	ca, err := signing.NewCA(name, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// leafWithSerial issues agency a certificate with a chosen serial (two
// CAs may well issue the same serial).
func leafWithSerial(t *testing.T, ca *signing.CA, agency string, serial int64) *signing.Identity {
	t.Helper()
	key, err := signing.NewKey(signing.KeyECDSA)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(signing.AgencyURIPrefix + agency)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: agency, SerialNumber: agency},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		URIs:         []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	id, err := signing.NewIdentity(agency, key, []*x509.Certificate{c, ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustCRL(t *testing.T, ca *signing.CA, number int64, entries ...signing.Revocation) []byte {
	t.Helper()
	der, err := ca.NewCRL(entries, number, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// A CRL revokes only certificates of the CA that signed it, even when
// another trusted CA has the same name and issued the same serial: the
// development CAs of every bus used to share a name, and a CRL of one bus
// revoked agencies of all.
func TestCRLAppliesToItsCAOnly(t *testing.T) {
	name := "docaxis development CA"
	mine, theirs := twinCA(t, name), twinCA(t, name)
	victim := leafWithSerial(t, mine, codeA, 4242)
	own := leafWithSerial(t, theirs, codeB, 4242)
	trust := signing.NewTrust(mine.Cert, theirs.Cert)
	v := &signing.Verifier{Trust: trust}
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	if _, err := trust.ApplyCRL(mustCRL(t, theirs, 1, signing.Revocation{Serial: big.NewInt(4242), At: at})); err != nil {
		t.Fatal(err)
	}
	if _, ok := trust.RevocationOf(victim.Certificate()); ok {
		t.Fatal("a CRL of another CA with the same name revoked the certificate")
	}
	if _, err := v.Verify(seal(t, victim, document(codeA, codeB))); err != nil {
		t.Fatalf("victim's envelope: %v", err)
	}
	if _, ok := trust.RevocationOf(own.Certificate()); !ok {
		t.Fatal("the CRL did not revoke its own CA's certificate")
	}
	if _, err := v.Verify(seal(t, own, document(codeB, codeA))); !errors.Is(err, signing.ErrRevoked) {
		t.Fatalf("revoked certificate's envelope: %v, want ErrRevoked", err)
	}
	// Each CA's CRL is in force side by side: the second does not replace
	// the first.
	if _, err := trust.ApplyCRL(mustCRL(t, mine, 1, signing.Revocation{Serial: big.NewInt(4242), At: at})); err != nil {
		t.Fatal(err)
	}
	for _, id := range []*signing.Identity{victim, own} {
		if _, ok := trust.RevocationOf(id.Certificate()); !ok {
			t.Errorf("%s not revoked with both CRLs in force", id.Agency)
		}
	}
}

func TestCRLKeyedByCA(t *testing.T) {
	ca, other := twinCA(t, "CA of bus A"), twinCA(t, "CA of bus B")
	trust := signing.NewTrust(ca.Cert, other.Cert)
	der := mustCRL(t, ca, 3)
	tests := []struct {
		name  string
		key   string
		der   []byte
		wantE error
	}{
		{"its own key", signing.KeyID(ca.Cert), der, nil},
		{"another CA's key", signing.KeyID(other.Cert), der, signing.ErrUntrusted},
		{"no key", "", der, signing.ErrUntrusted},
		{"older number", signing.KeyID(ca.Cert), mustCRL(t, ca, 2), signing.ErrStaleCRL},
		{"same number again", signing.KeyID(ca.Cert), mustCRL(t, ca, 3), nil},
		{"newer number", signing.KeyID(ca.Cert), mustCRL(t, ca, 4), nil},
		{"from an untrusted CA", signing.KeyID(ca.Cert), mustCRL(t, twinCA(t, "CA of bus A"), 9), signing.ErrUntrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := trust.ApplyCRLFor(tt.key, tt.der)
			if !errors.Is(err, tt.wantE) || (tt.wantE == nil) != (err == nil) {
				t.Fatalf("ApplyCRLFor = %v, want %v", err, tt.wantE)
			}
		})
	}
	if n, ok := trust.CRLNumber(signing.KeyID(ca.Cert)); !ok || n.Int64() != 4 {
		t.Fatalf("CRL number in force %v, %v; want 4", n, ok)
	}
	// A newer list replaces the older: a certificate it no longer lists is
	// no longer revoked (a CA's complete CRL is its word).
	id := leafWithSerial(t, ca, codeA, 7)
	if _, err := trust.ApplyCRL(mustCRL(t, ca, 5, signing.Revocation{Serial: big.NewInt(7), At: time.Now()})); err != nil {
		t.Fatal(err)
	}
	if _, ok := trust.RevocationOf(id.Certificate()); !ok {
		t.Fatal("not revoked by CRL 5")
	}
	if _, err := trust.ApplyCRL(mustCRL(t, ca, 4)); !errors.Is(err, signing.ErrStaleCRL) {
		t.Fatalf("replaying CRL 4 after 5: %v", err)
	}
	if _, ok := trust.RevocationOf(id.Certificate()); !ok {
		t.Fatal("an older CRL brought a revoked certificate back")
	}
}

// A CRL kept before its CA is trusted applies once the CA is added.
func TestKeepCRLUntilTrusted(t *testing.T) {
	ca := twinCA(t, "later CA")
	id := leafWithSerial(t, ca, codeA, 11)
	trust := signing.NewTrust()
	der := mustCRL(t, ca, 1, signing.Revocation{Serial: big.NewInt(11), At: time.Now().Add(-time.Minute)})
	if err := trust.KeepCRL(signing.KeyID(ca.Cert), der); err != nil {
		t.Fatal(err)
	}
	if _, ok := trust.RevocationOf(id.Certificate()); ok {
		t.Fatal("revoked before its CA is trusted")
	}
	trust.AddRoot(ca.Cert)
	if _, ok := trust.RevocationOf(id.Certificate()); !ok {
		t.Fatal("the kept CRL was not applied when its CA was added")
	}
	// Kept under the key of a trusted CA that did not sign it: refused.
	if err := trust.KeepCRL(signing.KeyID(ca.Cert), mustCRL(t, twinCA(t, "x"), 1)); err == nil {
		t.Fatal("KeepCRL of a CRL signed by another key under a trusted CA's key succeeded")
	}
	if err := trust.KeepCRL(signing.KeyID(ca.Cert), []byte("not a CRL")); err == nil {
		t.Fatal("KeepCRL(garbage) succeeded")
	}
}

// A withdrawn CA's chains verify only before the withdrawal: history
// stays valid, nothing new does.
func TestWithdrawCA(t *testing.T) {
	ca := twinCA(t, "leaving bus")
	id := leafWithSerial(t, ca, codeA, 5)
	v := &signing.Verifier{Trust: signing.NewTrust(ca.Cert)}
	before := document(codeA, codeB)
	before.Created = time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Millisecond)
	rawBefore, rawAfter := seal(t, id, before), seal(t, id, document(codeA, codeB))
	if _, err := v.Verify(rawAfter); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-5 * time.Minute)
	v.Trust.WithdrawCA(signing.KeyID(ca.Cert), at)
	if _, err := v.Verify(rawAfter); !errors.Is(err, signing.ErrRevoked) || !strings.Contains(err.Error(), "withdrawn") {
		t.Fatalf("signed after the withdrawal: %v", err)
	}
	if _, err := v.Verify(rawBefore); err != nil {
		t.Fatalf("signed before the withdrawal: %v", err)
	}
	// A later withdrawal time does not undo an earlier one.
	v.Trust.WithdrawCA(signing.KeyID(ca.Cert), time.Now().Add(time.Hour))
	if w, _ := v.Trust.Withdrawal(signing.KeyID(ca.Cert)); !w.Equal(at) {
		t.Fatalf("withdrawal moved to %s", w)
	}
}

func TestKeystoreRevokeCertificate(t *testing.T) {
	ks, err := signing.OpenKeystore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ks.CAFor("H14")
	if err != nil {
		t.Fatal(err)
	}
	if cn := ca.Cert.Subject.CommonName; !strings.Contains(cn, "H14") || !strings.Contains(cn, signing.KeyID(ca.Cert)[:16]) {
		t.Fatalf("CA name %q names neither the bus nor the key", cn)
	}
	other, err := signing.OpenKeystore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	oca, err := other.CA()
	if err != nil {
		t.Fatal(err)
	}
	if oca.Cert.Subject.CommonName == ca.Cert.Subject.CommonName {
		t.Fatal("two development CAs share a name")
	}
	a, _ := ca.Issue(codeA, "A", signing.IssueOptions{})
	b, _ := ca.Issue(codeB, "B", signing.IssueOptions{})
	trust := signing.NewTrust(ca.Cert)
	var last []byte
	for i, id := range []*signing.Identity{a, b} {
		der, err := ks.RevokeCertificate(id.Certificate(), id.Agency, time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		crl, err := trust.ApplyCRL(der)
		if err != nil {
			t.Fatal(err)
		}
		if crl.Number.Int64() != int64(i+1) || len(crl.RevokedCertificateEntries) != i+1 {
			t.Fatalf("CRL %d: number %s, %d entries", i+1, crl.Number, len(crl.RevokedCertificateEntries))
		}
		last = der
	}
	if _, err := trust.ApplyCRL(last); err != nil {
		t.Fatal(err)
	}
	for _, id := range []*signing.Identity{a, b} {
		if _, ok := trust.RevocationOf(id.Certificate()); !ok {
			t.Errorf("%s not in the last CRL", id.Agency)
		}
	}
	// Another CA's certificate: its CRL would mean nothing for it.
	foreign, _ := oca.Issue(codeC, "C", signing.IssueOptions{})
	if _, err := ks.RevokeCertificate(foreign.Certificate(), codeC, time.Now(), time.Hour); !errors.Is(err, signing.ErrNotIssuedHere) {
		t.Fatalf("revoking another CA's certificate: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(ks.Dir, "ca", "revoked.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("revoked.json: %v %v", fi, err)
	}
}
