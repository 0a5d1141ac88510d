package audit_test

import (
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/signingtest"
)

// TestAuditKeyProfile holds the audit certificate to the extensions and
// validity it had before the issuers became one (testdata/golden, written
// by the old issuer with -update), also when the CA ends first.
func TestAuditKeyProfile(t *testing.T) {
	for _, tt := range []struct {
		name       string
		caValidity time.Duration
	}{{"audit", 20 * 365 * 24 * time.Hour}, {"audit-clamped", 48 * time.Hour}} {
		t.Run(tt.name, func(t *testing.T) {
			ca, err := signing.NewCA("profile CA", tt.caValidity)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			k, err := audit.NewKey(ca, 10*365*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			signingtest.Golden(t, *updateGolden, "profile-"+tt.name+".txt", signingtest.Profile(k.Chain[0], start))
		})
	}
}
