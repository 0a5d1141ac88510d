package audit_test

import (
	"crypto/x509"
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
			signingtest.CheckProfile(t, *updateGolden, tt.name, tt.caValidity, func(ca *signing.CA) (*x509.Certificate, error) {
				k, err := audit.NewKey(ca, 10*365*24*time.Hour)
				if err != nil {
					return nil, err
				}
				return k.Chain[0], nil
			})
		})
	}
}
