package signing_test

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/signingtest"
)

// TestIssueProfiles holds each kind of certificate the CA issues to the
// extensions and validity it had before the issuers became one
// (testdata/golden, written by the old issuers with -update).
func TestIssueProfiles(t *testing.T) {
	leaf := func(id *signing.Identity, err error) (*x509.Certificate, error) {
		if err != nil {
			return nil, err
		}
		return id.Chain[0], nil
	}
	tests := []struct {
		name  string
		issue func(ca *signing.CA) (*x509.Certificate, error)
	}{
		{"agency", func(ca *signing.CA) (*x509.Certificate, error) {
			return leaf(ca.Issue(codeA, "Văn phòng Chính phủ", signing.IssueOptions{}))
		}},
		{"agency-noname-ed25519", func(ca *signing.CA) (*x509.Certificate, error) {
			return leaf(ca.Issue(codeB, "", signing.IssueOptions{KeyType: signing.KeyEd25519, Validity: 48 * time.Hour}))
		}},
		{"agency-notbefore", func(ca *signing.CA) (*x509.Certificate, error) {
			return leaf(ca.Issue(codeC, "H14", signing.IssueOptions{NotBefore: time.Now().Add(-72 * time.Hour), Validity: 24 * time.Hour}))
		}},
		{"system", func(ca *signing.CA) (*x509.Certificate, error) {
			return leaf(ca.IssueSystem("dms-01", "Hệ thống QLVB", signing.IssueOptions{}))
		}},
		{"system-noname", func(ca *signing.CA) (*x509.Certificate, error) {
			return leaf(ca.IssueSystem("dms-02", "", signing.IssueOptions{Validity: time.Hour}))
		}},
		{"tls", func(ca *signing.CA) (*x509.Certificate, error) {
			c, _, err := ca.IssueServer([]string{"localhost", "127.0.0.1", "::1", "bus.example.vn"}, 365*24*time.Hour)
			return c, err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signingtest.CheckProfile(t, *updateGolden, tt.name, signingtest.DefaultCAValidity, tt.issue)
		})
	}
}
