package federation_test

import (
	"crypto/x509"
	"testing"

	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/signingtest"
)

// TestBusIdentityProfile holds the bus certificate to the extensions and
// validity it had before the issuers became one (testdata/golden, written
// by the old issuer with -update).
func TestBusIdentityProfile(t *testing.T) {
	signingtest.CheckProfile(t, *updateGolden, "bus", signingtest.DefaultCAValidity, func(ca *signing.CA) (*x509.Certificate, error) {
		id, err := federation.LoadBusIdentity(t.TempDir(), "HN", ca)
		if err != nil {
			return nil, err
		}
		return id.Chain[0], nil
	})
}
