package signing_test

import (
	"crypto"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// TestIssuePurposes: what each purpose marks its certificate with, read
// back by the functions that tell purposes apart.
func TestIssuePurposes(t *testing.T) {
	ca, err := signing.NewCA("purpose CA", 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		p       signing.Purpose
		subject string
		kt      signing.KeyType
		check   func(c *x509.Certificate) bool
	}{
		{signing.PurposeAgency, codeA, signing.KeyRSA, func(c *x509.Certificate) bool { return signing.AgencyOf(c) == codeA }},
		{signing.PurposeSystem, "dms-01", signing.KeyEd25519, func(c *x509.Certificate) bool {
			return signing.SystemOf(c) == "dms-01" && signing.AgencyOf(c) == ""
		}},
		{signing.PurposeBus, "HN", signing.KeyECDSA, func(c *x509.Certificate) bool {
			return len(c.URIs) == 1 && c.URIs[0].String() == signing.BusURIPrefix+"HN" && signing.AgencyOf(c) == ""
		}},
		{signing.PurposeAudit, "", signing.KeyECDSA, func(c *x509.Certificate) bool {
			return len(c.URIs) == 1 && c.URIs[0].String() == signing.AuditURI && c.UnknownExtKeyUsage[0].Equal(signing.OIDExtKeyUsageAudit)
		}},
		{signing.PurposeTLS, "", signing.KeyECDSA, func(c *x509.Certificate) bool {
			return slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) && len(c.URIs) == 0
		}},
		{signing.PurposeTimeStamping, "", signing.KeyRSA, func(c *x509.Certificate) bool {
			return slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}) && c.NotAfter.Equal(ca.Cert.NotAfter)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.p.String(), func(t *testing.T) {
			key, chain, err := signing.IssueKey(ca, tt.p, tt.subject, tt.kt, signing.IssueOptions{Validity: 10 * 365 * 24 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if len(chain) != 2 || !chain[1].Equal(ca.Cert) || chain[0].CheckSignatureFrom(ca.Cert) != nil {
				t.Fatalf("chain not issued by the CA")
			}
			if k, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(chain[0].PublicKey) {
				t.Fatal("key does not match its certificate")
			}
			if !tt.check(chain[0]) {
				t.Errorf("certificate does not carry its purpose: %+v", chain[0])
			}
		})
	}
}

// TestServiceOf: every purpose but an agency's is a service's, and so is
// the CA; a certificate issued elsewhere for signing is not.
func TestServiceOf(t *testing.T) {
	ca, err := signing.NewCA("service CA", 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		p       signing.Purpose
		subject string
		want    string
	}{
		{signing.PurposeAgency, codeA, ""},
		{signing.PurposeSystem, "dms-01", "document system"},
		{signing.PurposeBus, "HN", "bus"},
		{signing.PurposeAudit, "", "audit"},
		{signing.PurposeTLS, "", "TLS server"},
		{signing.PurposeTimeStamping, "", "time-stamping"},
	} {
		t.Run(tt.p.String(), func(t *testing.T) {
			_, chain, err := signing.IssueKey(ca, tt.p, tt.subject, signing.KeyECDSA, signing.IssueOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := signing.ServiceOf(chain[0]); got != tt.want {
				t.Errorf("ServiceOf = %q, want %q", got, tt.want)
			}
			if got := signing.ServiceOf(chain[1]); got != "CA" {
				t.Errorf("ServiceOf(CA) = %q", got)
			}
		})
	}
	if got := signing.BusOf(ca.Cert); got != "" {
		t.Errorf("BusOf(CA) = %q", got)
	}
}

func TestIssuePurposeRefuses(t *testing.T) {
	ca := sharedCA(t)
	rsaKey := identity(t, codeA, signing.KeyRSA).Key
	tests := []struct {
		name    string
		p       signing.Purpose
		subject string
		pub     crypto.PublicKey
		err     error
	}{
		{"agency with a path for a code", signing.PurposeAgency, "../../x", rsaKey.Public(), envelope.ErrInvalidCode},
		{"system without id", signing.PurposeSystem, "", rsaKey.Public(), envelope.ErrInvalidCode},
		{"bus with an RSA key", signing.PurposeBus, "HN", rsaKey.Public(), signing.ErrPurposeKey},
		{"audit with an RSA key", signing.PurposeAudit, "", rsaKey.Public(), signing.ErrPurposeKey},
		{"bus without id", signing.PurposeBus, "", ca.Key.Public(), nil},
		{"unknown purpose", signing.Purpose(99), "x", ca.Key.Public(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := signing.Issue(ca, tt.p, tt.subject, tt.pub, signing.IssueOptions{})
			if err == nil || c != nil || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Errorf("Issue = %v, %v; want %v", c, err, tt.err)
			}
		})
	}
}

// TestOpenIssued: the open-or-issue flow of the audit key and local TSA.
func TestOpenIssued(t *testing.T) {
	ca, err := signing.NewCA("open CA", 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := signing.NewCA("other CA", 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	issued := 0
	issueFrom := func(ca *signing.CA, validity time.Duration) func() (crypto.Signer, []*x509.Certificate, error) {
		return func() (crypto.Signer, []*x509.Certificate, error) {
			issued++
			return signing.IssueKey(ca, signing.PurposeAudit, "", signing.KeyECDSA, signing.IssueOptions{Validity: validity})
		}
	}
	isAudit := func(_ crypto.Signer, chain []*x509.Certificate) bool { return len(chain[0].URIs) == 1 }
	dir := filepath.Join(t.TempDir(), "audit")
	open := func(issue func() (crypto.Signer, []*x509.Certificate, error)) *x509.Certificate {
		t.Helper()
		_, chain, err := signing.OpenIssued(dir, ca, isAudit, issue)
		if err != nil {
			t.Fatal(err)
		}
		return chain[0]
	}
	first := open(issueFrom(ca, 365*24*time.Hour))
	if issued != 1 {
		t.Fatalf("first use issued %d", issued)
	}
	if again := open(issueFrom(ca, 365*24*time.Hour)); !again.Equal(first) || issued != 1 {
		t.Fatal("a usable pair was replaced")
	}
	steps := []struct {
		name   string
		damage func()
	}{
		{"expiring within RenewBefore", func() {
			k, c, _ := issueFrom(ca, signing.RenewBefore-time.Hour)()
			mustSave(t, dir, k, c)
		}},
		{"from another CA", func() {
			k, c, _ := issueFrom(other, 365*24*time.Hour)()
			mustSave(t, dir, k, c)
		}},
		{"not usable for its purpose", func() {
			k, c, _ := signing.IssueKey(ca, signing.PurposeTLS, "", signing.KeyECDSA, signing.IssueOptions{})
			mustSave(t, dir, k, c)
		}},
		{"crash between the writes: new key, old certificate", func() {
			k, _, _ := issueFrom(ca, time.Hour)()
			kp, _ := signing.EncodeKey(k)
			if err := os.WriteFile(filepath.Join(dir, signing.KeyFile), kp, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"crash before the certificate of a first pair", func() {
			if err := os.Remove(filepath.Join(dir, signing.CertFile)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, s := range steps {
		s.damage()
		before := issued
		got := open(issueFrom(ca, 365*24*time.Hour))
		if issued != before+1 || got.CheckSignatureFrom(ca.Cert) != nil || time.Until(got.NotAfter) < 300*24*time.Hour {
			t.Errorf("%s: not replaced by a fresh pair from the CA", s.name)
		}
	}
	// A file that cannot be read is an error, not a reason to replace it.
	if err := os.WriteFile(filepath.Join(dir, signing.KeyFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := issued
	if _, _, err := signing.OpenIssued(dir, ca, isAudit, issueFrom(ca, time.Hour)); err == nil || issued != before {
		t.Errorf("damaged key: err %v, issued %d", err, issued-before)
	}
}

// TestKeyPairFiles: every key pair the bus keeps is written the same way:
// key then certificate, mode 0600, no temporary files left.
func TestKeyPairFiles(t *testing.T) {
	id := identity(t, codeA, signing.KeyEd25519)
	f := signing.KeyPairFiles{Dir: filepath.Join(t.TempDir(), "bus"), Key: "bus.key", Cert: "bus.crt"}
	if _, _, err := f.Load(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(empty) = %v", err)
	}
	// A stale temporary file from a crash, readable by others.
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.Dir, ".bus.key.tmp"), []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.Save(id.Key, id.Chain); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(f.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", e.Name(), fi.Mode().Perm())
		}
	}
	if !slices.Equal(names, []string{"bus.crt", "bus.key"}) {
		t.Errorf("files = %v", names)
	}
	key, chain, err := f.Load()
	if err != nil || !chain[0].Equal(id.Chain[0]) || key == nil {
		t.Fatalf("Load = %v", err)
	}
	other := identity(t, codeB, signing.KeyEd25519)
	mustSave(t, t.TempDir(), other.Key, other.Chain)
	kp, _ := signing.EncodeKey(other.Key)
	if err := os.WriteFile(filepath.Join(f.Dir, f.Key), kp, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Load(); !errors.Is(err, signing.ErrKeyMismatch) {
		t.Errorf("Load(mismatch) = %v", err)
	}
}

func mustSave(t *testing.T, dir string, key crypto.Signer, chain []*x509.Certificate) {
	t.Helper()
	if err := signing.SaveKeyPair(dir, key, chain); err != nil {
		t.Fatal(err)
	}
}

// TestKeystoreCAWrites: the CA is written by the same writer, key first:
// a crash before its certificate leaves no CA (a new one is made), and a
// key that does not match the certificate is refused, never used.
func TestKeystoreCAWrites(t *testing.T) {
	dir := t.TempDir()
	ks, err := signing.OpenKeystore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ks.CA()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "ca", "ca.crt")); err != nil {
		t.Fatal(err)
	}
	ca2, err := ks.CA()
	if err != nil || signing.KeyID(ca2.Cert) == signing.KeyID(ca.Cert) {
		t.Fatalf("CA after a crash before its certificate: %v", err)
	}
	if again, err := ks.CA(); err != nil || !again.Cert.Equal(ca2.Cert) {
		t.Fatalf("CA reloaded: %v", err)
	}
	kp, _ := signing.EncodeKey(ca.Key)
	if err := os.WriteFile(filepath.Join(dir, "ca", "ca.key"), kp, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.CA(); !errors.Is(err, signing.ErrKeyMismatch) {
		t.Errorf("CA with another key = %v, want ErrKeyMismatch", err)
	}
}
