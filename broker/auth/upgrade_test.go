package auth

import (
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
	tok, err := reopened.accountJWT(jwt.NoLimit)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := jwt.DecodeAccountClaims(tok)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{old: true, fresh: false} {
		uc := userOf(t, path)
		if got := ac.Revocations.IsRevoked(uc.Subject, time.Unix(uc.IssuedAt, 0)); got != want {
			t.Fatalf("%s revoked = %v, want %v", filepath.Base(path), got, want)
		}
	}
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
