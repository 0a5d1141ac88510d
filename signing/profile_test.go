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
	ca, err := signing.NewCA("profile CA", 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		issue func() (*signing.Identity, error)
	}{
		{"agency", func() (*signing.Identity, error) {
			return ca.Issue(codeA, "Văn phòng Chính phủ", signing.IssueOptions{})
		}},
		{"agency-noname-ed25519", func() (*signing.Identity, error) {
			return ca.Issue(codeB, "", signing.IssueOptions{KeyType: signing.KeyEd25519, Validity: 48 * time.Hour})
		}},
		{"agency-notbefore", func() (*signing.Identity, error) {
			return ca.Issue(codeC, "H14", signing.IssueOptions{NotBefore: time.Now().Add(-72 * time.Hour), Validity: 24 * time.Hour})
		}},
		{"system", func() (*signing.Identity, error) {
			return ca.IssueSystem("dms-01", "Hệ thống QLVB", signing.IssueOptions{})
		}},
		{"system-noname", func() (*signing.Identity, error) {
			return ca.IssueSystem("dms-02", "", signing.IssueOptions{Validity: time.Hour})
		}},
		{"tls", func() (*signing.Identity, error) {
			c, k, err := ca.IssueServer([]string{"localhost", "127.0.0.1", "::1", "bus.example.vn"}, 365*24*time.Hour)
			if err != nil {
				return nil, err
			}
			return &signing.Identity{Key: k, Chain: []*x509.Certificate{c}}, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			id, err := tt.issue()
			if err != nil {
				t.Fatal(err)
			}
			signingtest.Golden(t, *updateGolden, "profile-"+tt.name+".txt", signingtest.Profile(id.Chain[0], start))
		})
	}
}
