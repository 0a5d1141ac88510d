package auth_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/docaxis/docaxis/broker/auth"
	"github.com/nats-io/jwt/v2"
)

// accountClaims decodes the AXIS account JWT an authority hands servers.
func accountClaims(t *testing.T, a *auth.Authority) *jwt.AccountClaims {
	t.Helper()
	m := regexp.MustCompile(a.AccountPublicKey() + `: "([^"]+)"`).FindStringSubmatch(a.ServerConfig())
	if m == nil {
		t.Fatal("no account JWT in the server configuration")
	}
	ac, err := jwt.DecodeAccountClaims(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return ac
}

// A member's recorded leaf credentials are revoked in the account JWT, and
// stay revoked when the authority is opened again (a restart); another
// member's are untouched.
func TestRevokeLeaf(t *testing.T) {
	dir := t.TempDir()
	a, err := auth.Open(filepath.Join(dir, "nats"))
	if err != nil {
		t.Fatal(err)
	}
	creds := map[string]string{}
	for _, m := range []string{"H41", "H14"} {
		creds[m] = filepath.Join(dir, m+".creds")
		if err := a.LeafCreds("VN", m, creds[m]); err != nil {
			t.Fatal(err)
		}
		if err := a.RecordLeaf(m, creds[m]); err != nil {
			t.Fatal(err)
		}
	}
	users, err := a.RevokeLeaf("H41")
	if err != nil || len(users) != 1 {
		t.Fatalf("RevokeLeaf = %v, %v", users, err)
	}
	if none, err := a.RevokeLeaf("XX"); err != nil || len(none) != 0 {
		t.Fatalf("RevokeLeaf of a member with no credentials = %v, %v", none, err)
	}
	reopened, err := auth.Open(filepath.Join(dir, "nats"))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*auth.Authority{a, reopened} {
		ac := accountClaims(t, x)
		for m, path := range creds {
			tok, err := jwt.ParseDecoratedJWT(mustRead(t, path))
			if err != nil {
				t.Fatal(err)
			}
			uc, err := jwt.DecodeUserClaims(tok)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := ac.IsClaimRevoked(uc), m == "H41"; got != want {
				t.Errorf("credentials of %s revoked = %v, want %v", m, got, want)
			}
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
