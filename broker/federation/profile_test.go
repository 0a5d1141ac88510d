package federation_test

import (
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/signingtest"
)

// TestBusIdentityProfile holds the bus certificate to the extensions and
// validity it had before the issuers became one (testdata/golden, written
// by the old issuer with -update).
func TestBusIdentityProfile(t *testing.T) {
	ca, err := signing.NewCA("profile CA", 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	id, err := federation.LoadBusIdentity(t.TempDir(), "HN", ca)
	if err != nil {
		t.Fatal(err)
	}
	signingtest.Golden(t, *updateGolden, "profile-bus.txt", signingtest.Profile(id.Chain[0], start))
}
