package tsa_test

import (
	"flag"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/tsa"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/signingtest"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden from the current code")

// TestAuthorityProfile holds the TSA certificate to the extensions and
// validity it had before the issuers became one (testdata/golden, written
// by the old issuer with -update), also when the CA ends first.
func TestAuthorityProfile(t *testing.T) {
	for _, tt := range []struct {
		name       string
		caValidity time.Duration
	}{{"tsa", 20 * 365 * 24 * time.Hour}, {"tsa-clamped", 48 * time.Hour}} {
		t.Run(tt.name, func(t *testing.T) {
			ca, err := signing.NewCA("profile CA", tt.caValidity)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			a, err := tsa.NewAuthority(ca, "test TSA", 10*365*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			signingtest.Golden(t, *updateGolden, "profile-"+tt.name+".txt", signingtest.Profile(a.Chain[0], start))
		})
	}
}
