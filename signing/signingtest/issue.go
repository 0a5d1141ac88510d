package signingtest

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/docaxis/docaxis/signing"
)

// DefaultCAValidity is the validity of the CA the profile tests issue from
// when they do not test a CA that ends first.
const DefaultCAValidity = 10 * 365 * 24 * time.Hour

// CheckProfile is the profile test of every issuer (signing, audit, tsa,
// federation): from a fresh CA ("profile CA", valid for caValidity), issue
// makes one certificate, whose Profile, with its validity counted from
// just before it was issued, must be testdata/golden/profile-<name>.txt
// (rewritten instead when update is set).
func CheckProfile(t testing.TB, update bool, name string, caValidity time.Duration, issue func(ca *signing.CA) (*x509.Certificate, error)) {
	t.Helper()
	ca, err := signing.NewCA("profile CA", caValidity)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := issue(ca)
	if err != nil {
		t.Fatalf("issue %s: %v", name, err)
	}
	Golden(t, update, "profile-"+name+".txt", Profile(c, start))
}
