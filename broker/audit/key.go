package audit

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"slices"
	"time"

	"github.com/docaxis/docaxis/signing"
)

// AuditURI is the SAN URI of an audit certificate. It is not an agency URI
// (signing.AgencyURIPrefix), so an audit key can never sign as an agency.
const AuditURI = "urn:docaxis:audit"

// OIDExtKeyUsageAudit is the extended key usage of a docaxis audit
// certificate: id-kp-documentSigning (RFC 9336), which agency certificates
// (client auth, e-mail protection) do not carry. Together with AuditURI it
// marks a certificate as the bus's own.
var OIDExtKeyUsageAudit = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 36}

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

// NewKey creates an audit key with a certificate issued by ca.
func NewKey(ca *signing.CA, validity time.Duration) (*Key, error) {
	key, err := signing.NewKey(signing.KeyECDSA)
	if err != nil {
		return nil, fmt.Errorf("create audit key: %w", err)
	}
	// An hour back for clock skew between the bus and whoever verifies.
	now := time.Now().Add(-time.Hour)
	end := time.Now().Add(validity)
	if end.After(ca.Cert.NotAfter) {
		end = ca.Cert.NotAfter
	}
	u, _ := url.Parse(AuditURI)
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("create audit certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:       sn,
		Subject:            pkix.Name{CommonName: "docaxis audit", Organization: []string{"docaxis"}},
		NotBefore:          now,
		NotAfter:           end,
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{OIDExtKeyUsageAudit},
		URIs:               []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("create audit certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("create audit certificate: %w", err)
	}
	return &Key{Signer: key, Chain: []*x509.Certificate{cert, ca.Cert}}, nil
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
	k, err := loadKey(dir)
	if err == nil && keyUsable(k, ca) {
		return k, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, signing.ErrKeyMismatch) {
		return nil, err
	}
	k, err = NewKey(ca, 10*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := signing.SaveKeyPair(dir, k.Signer, k.Chain); err != nil {
		return nil, fmt.Errorf("save audit key: %w", err)
	}
	return k, nil
}

func loadKey(dir string) (*Key, error) {
	key, chain, err := signing.LoadKeyPair(dir)
	if err != nil {
		return nil, err
	}
	return &Key{Signer: key, Chain: chain}, nil
}

func keyUsable(k *Key, ca *signing.CA) bool {
	leaf := k.Chain[0]
	pub, err := x509.MarshalPKIXPublicKey(k.Signer.Public())
	if err != nil || !bytes.Equal(pub, leaf.RawSubjectPublicKeyInfo) || !IsAuditCertificate(leaf) {
		return false
	}
	if time.Until(leaf.NotAfter) < 30*24*time.Hour {
		return false
	}
	return leaf.CheckSignatureFrom(ca.Cert) == nil
}
