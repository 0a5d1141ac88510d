package audit

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/docaxis/docaxis/signing"
)

// AuditURI is the SAN URI of an audit certificate. It is not an agency URI
// (signing.AgencyURIPrefix), so an audit key can never sign as an agency.
const AuditURI = signing.AuditURI

// OIDExtKeyUsageAudit is the extended key usage of a docaxis audit
// certificate: id-kp-documentSigning (RFC 9336), which agency certificates
// (client auth, e-mail protection) do not carry. Together with AuditURI it
// marks a certificate as the bus's own.
var OIDExtKeyUsageAudit = signing.OIDExtKeyUsageAudit

// Key is the bus's audit key: it signs checkpoints of the chain. Chain is
// the audit certificate first, then the CA.
type Key struct {
	Signer crypto.Signer
	Chain  []*x509.Certificate
}

// Certificate returns the audit certificate.
func (k *Key) Certificate() *x509.Certificate { return k.Chain[0] }

// IsAuditCertificate reports whether c is a docaxis audit certificate: it
// carries the audit EKU and URI and binds no agency.
func IsAuditCertificate(c *x509.Certificate) bool {
	if signing.AgencyOf(c) != "" {
		return false
	}
	hasURI := slices.ContainsFunc(c.URIs, func(u *url.URL) bool { return u.String() == AuditURI })
	hasEKU := slices.ContainsFunc(c.UnknownExtKeyUsage, func(o asn1.ObjectIdentifier) bool { return o.Equal(OIDExtKeyUsageAudit) })
	return hasURI && hasEKU
}

// NewKey creates an audit key with a certificate issued by ca
// (signing.PurposeAudit: it ends with ca at the latest).
func NewKey(ca *signing.CA, validity time.Duration) (*Key, error) {
	key, chain, err := signing.IssueKey(ca, signing.PurposeAudit, "", signing.KeyECDSA, signing.IssueOptions{Validity: validity})
	if err != nil {
		return nil, fmt.Errorf("create audit key: %w", err)
	}
	return &Key{Signer: key, Chain: chain}, nil
}

// Audit key files under the directory given to OpenKey.
const (
	KeyFile  = signing.KeyFile
	CertFile = signing.CertFile
)

// OpenKey loads the audit key kept in dir (DIR/key.pem, DIR/cert.pem,
// usually <home>/audit), creating it with a certificate from ca on first
// use. A certificate that no longer chains to ca or expires within 30 days
// is renewed with a new key; checkpoints signed before carry their own
// certificate and keep verifying.
func OpenKey(dir string, ca *signing.CA) (*Key, error) {
	key, chain, err := signing.OpenIssued(dir, ca,
		func(_ crypto.Signer, chain []*x509.Certificate) bool { return IsAuditCertificate(chain[0]) },
		func() (crypto.Signer, []*x509.Certificate, error) {
			k, err := NewKey(ca, 10*365*24*time.Hour)
			if err != nil {
				return nil, nil, err
			}
			return k.Signer, k.Chain, nil
		})
	if err != nil {
		return nil, fmt.Errorf("open audit key: %w", err)
	}
	return &Key{Signer: key, Chain: chain}, nil
}
