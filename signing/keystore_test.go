package signing_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

func TestKeystoreRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	ks, err := signing.OpenKeystore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.CACert(); err == nil {
		t.Error("CACert before the CA exists succeeded")
	}
	ca, err := ks.CA()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ks.Agencies(); err != nil || len(got) != 0 {
		t.Errorf("Agencies of an empty keystore = %v, %v", got, err)
	}
	var saved []*signing.Identity
	for i, kt := range keyTypes {
		code := []string{codeA, codeB, codeC}[i]
		id, err := ca.Issue(code, "Agency "+code, signing.IssueOptions{KeyType: kt})
		if err != nil {
			t.Fatal(err)
		}
		if err := ks.Save(id); err != nil {
			t.Fatal(err)
		}
		saved = append(saved, id)
	}

	// A new process opens the same directory.
	ks2, err := signing.OpenKeystore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ca2, err := ks2.CA()
	if err != nil {
		t.Fatal(err)
	}
	if !ca2.Cert.Equal(ca.Cert) {
		t.Fatal("the CA was not persisted: a second open made a new one")
	}
	if c, err := ks2.CACert(); err != nil || !c.Equal(ca.Cert) {
		t.Errorf("CACert = %v", err)
	}
	if !reflect.DeepEqual(mustEncodeKey(t, ca2.Key), mustEncodeKey(t, ca.Key)) {
		t.Error("CA key changed on disk")
	}
	agencies, err := ks2.Agencies()
	if err != nil || !reflect.DeepEqual(agencies, []string{codeA, codeC, codeB}) {
		t.Errorf("Agencies = %v, %v; want sorted codes", agencies, err)
	}
	for _, id := range saved {
		got, err := ks2.Identity(id.Agency)
		if err != nil {
			t.Fatalf("Identity(%s): %v", id.Agency, err)
		}
		if got.Agency != id.Agency || len(got.Chain) != 2 || !got.Chain[0].Equal(id.Chain[0]) || !got.Chain[1].Equal(ca.Cert) {
			t.Errorf("Identity(%s) chain differs", id.Agency)
		}
		// The loaded key signs what the saved certificate verifies.
		raw, err := got.Seal(document(id.Agency, otherThan(id.Agency)))
		if err != nil {
			t.Fatal(err)
		}
		v := &signing.Verifier{Trust: signing.NewTrust(ca.Cert)}
		if _, err := v.Verify(raw); err != nil {
			t.Errorf("envelope signed with the loaded %s key: %v", id.Agency, err)
		}
	}
}

func otherThan(code string) string {
	if code == codeA {
		return codeB
	}
	return codeA
}

func TestKeystoreFileModes(t *testing.T) {
	dir := t.TempDir()
	ks, err := signing.OpenKeystore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ks.CA()
	if err != nil {
		t.Fatal(err)
	}
	id, err := ca.Issue(codeA, "", signing.IssueOptions{KeyType: signing.KeyEd25519})
	if err != nil {
		t.Fatal(err)
	}
	if err := ks.Save(id); err != nil {
		t.Fatal(err)
	}
	// Save again: replacing a key keeps it private too.
	if err := ks.Save(id); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"ca/ca.key", "agencies/" + codeA + "/key.pem"} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
	for _, p := range []string{"ca", "agencies/" + codeA} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("directory %s has mode %v, want no group or other access", p, fi.Mode().Perm())
		}
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(filepath.Join(dir, "agencies", codeA))
	if len(ents) != 2 {
		t.Errorf("agency directory holds %d entries, want key.pem and cert.pem", len(ents))
	}
}

func TestKeystoreErrors(t *testing.T) {
	dir := t.TempDir()
	ks, err := signing.OpenKeystore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Identity(codeA); !errors.Is(err, signing.ErrNoIdentity) {
		t.Errorf("Identity(unknown) = %v, want ErrNoIdentity", err)
	}
	// Codes become paths: nothing may point outside the keystore.
	for _, code := range []string{"../ca", "..", "a/b", "", "/etc"} {
		if _, err := ks.Identity(code); !errors.Is(err, envelope.ErrInvalidCode) {
			t.Errorf("Identity(%q) = %v, want ErrInvalidCode", code, err)
		}
	}
	id := identity(t, codeA, signing.KeyEd25519)
	evil := *id
	evil.Agency = "../../escaped"
	if err := ks.Save(&evil); !errors.Is(err, envelope.ErrInvalidCode) {
		t.Errorf("Save(%q) = %v, want ErrInvalidCode", evil.Agency, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "..", "escaped")); err == nil {
		t.Error("Save wrote outside the keystore")
	}
	// A damaged key file is an error, not "no identity".
	if err := ks.Save(id); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "agencies", codeA, "key.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Identity(codeA); err == nil || errors.Is(err, signing.ErrNoIdentity) {
		t.Errorf("Identity(damaged) = %v, want a load error", err)
	}
	// A key that does not match its certificate is refused.
	other := identity(t, codeB, signing.KeyEd25519)
	kp := mustEncodeKey(t, other.Key)
	if err := os.WriteFile(filepath.Join(dir, "agencies", codeA, "key.pem"), kp, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Identity(codeA); err == nil {
		t.Error("Identity with a mismatched key succeeded")
	}
}
