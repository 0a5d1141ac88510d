package auth

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
)

// Credentials issued under an earlier version's (wider) permissions are
// revoked on upgrade; those issued afterwards are not.
func TestRevokeOutdated(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if outdated, err := a.Outdated(); err != nil || outdated {
		t.Fatalf("a new authority is outdated: %v %v", outdated, err)
	}
	old := filepath.Join(dir, "old.creds")
	if err := a.AgencyCreds("000.00.00.G22", old); err != nil {
		t.Fatal(err)
	}
	// A home of an earlier version has no version file.
	if err := os.Remove(a.permissionsPath()); err != nil {
		t.Fatal(err)
	}
	if a, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	if outdated, err := a.Outdated(); err != nil || !outdated {
		t.Fatalf("an earlier version's home is not outdated: %v %v", outdated, err)
	}
	if err := a.RevokeOutdated(); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "new.creds")
	if err := a.AgencyCreds("000.00.00.G22", fresh); err != nil {
		t.Fatal(err)
	}
	reopened, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkRevoked(t, reopened, map[string]bool{old: true, fresh: false})
	if outdated, _ := reopened.Outdated(); outdated {
		t.Fatal("still outdated after the upgrade")
	}
}

func userOf(t *testing.T, path string) *jwt.UserClaims {
	t.Helper()
	uc, err := readUserClaims(path)
	if err != nil {
		t.Fatal(err)
	}
	return uc
}

// RevokeAgencyCreds revokes the agency's credentials file and every copy
// issued into it before (handed to a document system, then replaced);
// credentials issued afterwards are not revoked.
func TestRevokeAgencyCreds(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "agencies", "G22", "nats.creds")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := a.AgencyCreds("000.00.00.G22", path); err != nil {
		t.Fatal(err)
	}
	handedOut := copyOf(t, path, filepath.Join(dir, "copy-at-the-dms.creds"))
	if err := a.AgencyCreds("000.00.00.G22", path); err != nil { // issued again: the file replaced
		t.Fatal(err)
	}
	current := copyOf(t, path, filepath.Join(dir, "current.creds"))
	other := filepath.Join(dir, "other.creds")
	if err := a.AgencyCreds("000.00.00.H14", other); err != nil {
		t.Fatal(err)
	}
	n, err := a.RevokeAgencyCreds(path)
	if err != nil || n != 2 {
		t.Fatalf("RevokeAgencyCreds = %d, %v; want the 2 users issued into the file", n, err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the revoked file is still there: %v", err)
	}
	fresh := filepath.Join(dir, "fresh.creds")
	if err := a.AgencyCreds("000.00.00.G22", fresh); err != nil {
		t.Fatal(err)
	}
	checkRevoked(t, a, map[string]bool{handedOut: true, current: true, other: false, fresh: false})
	if _, err := a.RevokeAgencyCreds(filepath.Join(dir, "none.creds")); !os.IsNotExist(err) && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("revoke of credentials never issued: %v", err)
	}
}

// checkRevoked checks, for each credentials file, whether the account JWT
// a encodes now revokes its user.
func checkRevoked(t *testing.T, a *Authority, want map[string]bool) {
	t.Helper()
	tok, err := a.accountJWT(jwt.NoLimit)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := jwt.DecodeAccountClaims(tok)
	if err != nil {
		t.Fatal(err)
	}
	for path, revoked := range want {
		uc := userOf(t, path)
		if got := ac.Revocations.IsRevoked(uc.Subject, time.Unix(uc.IssuedAt, 0)); got != revoked {
			t.Errorf("%s revoked = %v, want %v", filepath.Base(path), got, revoked)
		}
	}
}

// copyOf copies the file at from to to and returns to.
func copyOf(t *testing.T, from, to string) string {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return to
}
