package attacks_test

import (
	"net/http"
	"strings"
	"testing"
)

// The directory's changes since a version (GET /v1/agencies?since=) with a
// real agency's token: malformed, oversized and hostile queries get 400,
// and no answer carries key material (certificates, bindings).
func TestDirectoryChangesAttacks(t *testing.T) {
	a := newArena(t)
	for _, q := range []string{
		"since=-1", "since=x", "since=18446744073709551616", "since=1e9",
		"parent=" + strings.Repeat("A", 4096), "parent=a%00b", "parent=..%2F..", "parent=*",
	} {
		res, _ := a.do(attacker, "GET", "/v1/agencies?"+q, nil)
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /v1/agencies?%s = %d, want 400", q, res.StatusCode)
		}
	}
	res, body := a.do(attacker, "GET", "/v1/agencies?since=0", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("since=0 = %d %s", res.StatusCode, body)
	}
	for _, secret := range []string{"BEGIN CERTIFICATE", "bindings", "certificate"} {
		if strings.Contains(string(body), secret) {
			t.Errorf("the directory's changes carry %q", secret)
		}
	}
}
