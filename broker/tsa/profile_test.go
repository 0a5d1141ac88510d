package tsa_test

import (
	"crypto/x509"
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
			signingtest.CheckProfile(t, *updateGolden, tt.name, tt.caValidity, func(ca *signing.CA) (*x509.Certificate, error) {
				a, err := tsa.NewAuthority(ca, "test TSA", 10*365*24*time.Hour)
				if err != nil {
					return nil, err
				}
				return a.Chain[0], nil
			})
		})
	}
}
