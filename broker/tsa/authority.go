package tsa

import (
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"sync"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/docaxis/docaxis/signing"
)

// LocalPolicy is the TSA policy of the bus's local TSA. It names no
// published practice statement: the local TSA is the bus's own clock,
// signed with a key the operator holds, and says so.
var LocalPolicy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 0, 3161, 1}

// Files of the local TSA under the directory given to OpenAuthority.
const (
	KeyFile  = signing.KeyFile
	CertFile = signing.CertFile
)

// Authority is a time-stamping authority: the bus's local TSA, or one a
// test runs. Chain is its certificate first, then the CA.
type Authority struct {
	Signer crypto.Signer
	Chain  []*x509.Certificate
	Policy asn1.ObjectIdentifier
	// Now is the TSA's clock (time.Now when nil).
	Now func() time.Time

	mu sync.Mutex
}

// NewAuthority creates a TSA key with a certificate from ca
// (signing.PurposeTimeStamping): its extended key usage is
// id-kp-timeStamping alone, marked critical, as RFC 3161 requires (and
// `openssl ts -verify` checks), and it ends with ca at the latest.
func NewAuthority(ca *signing.CA, name string, validity time.Duration) (*Authority, error) {
	key, chain, err := signing.IssueKey(ca, signing.PurposeTimeStamping, "", signing.KeyECDSA, signing.IssueOptions{Name: name, Validity: validity})
	if err != nil {
		return nil, fmt.Errorf("create TSA key: %w", err)
	}
	return &Authority{Signer: key, Chain: chain, Policy: LocalPolicy}, nil
}

// IssueCertificate issues a time-stamping certificate for pub from the CA
// (cert, key): signing.Issue with signing.PurposeTimeStamping.
func IssueCertificate(caCert *x509.Certificate, caKey crypto.Signer, pub crypto.PublicKey, name string, validity time.Duration) (*x509.Certificate, error) {
	return signing.Issue(&signing.CA{Cert: caCert, Key: caKey}, signing.PurposeTimeStamping, "", pub, signing.IssueOptions{Name: name, Validity: validity})
}

// OpenAuthority loads the local TSA kept in dir (usually <home>/tsa),
// creating it with a certificate from ca on first use, and renewing it
// when its certificate no longer chains to ca or expires within 30 days
// (signing.OpenIssued). Tokens signed before carry their own certificate
// and keep verifying.
func OpenAuthority(dir string, ca *signing.CA) (*Authority, error) {
	key, chain, err := signing.OpenIssued(dir, ca,
		func(_ crypto.Signer, chain []*x509.Certificate) bool {
			return IsTimeStampingCertificate(chain[0]) == nil
		},
		func() (crypto.Signer, []*x509.Certificate, error) {
			a, err := NewAuthority(ca, "docaxis local TSA", 10*365*24*time.Hour)
			if err != nil {
				return nil, nil, err
			}
			return a.Signer, a.Chain, nil
		})
	if err != nil {
		return nil, fmt.Errorf("open local TSA: %w", err)
	}
	return &Authority{Signer: key, Chain: chain, Policy: LocalPolicy}, nil
}

// Respond answers a DER TimeStampReq with a DER TimeStampResp: a token
// over the request's imprint at the TSA's time, or, for a request it
// cannot read, a rejection (badRequest / badAlg) as RFC 3161 says.
func (a *Authority) Respond(req []byte) ([]byte, error) {
	q, err := ParseRequest(req)
	if err != nil {
		return timestamp.CreateErrorResponse(timestamp.Rejection, timestamp.BadRequest)
	}
	return a.Sign(q)
}

// Sign makes a granted TimeStampResp for q.
func (a *Authority) Sign(q *Request) ([]byte, error) {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	policy := a.Policy
	if policy == nil {
		policy = LocalPolicy
	}
	ts := &timestamp.Timestamp{
		HashAlgorithm: q.Hash, HashedMessage: q.Digest, Nonce: q.Nonce,
		Time: now().UTC().Truncate(time.Second), Accuracy: time.Second, Policy: policy,
		AddTSACertificate: q.CertReq,
	}
	if q.CertReq && len(a.Chain) > 1 {
		ts.Certificates = a.Chain[1:]
	}
	// The CMS signer takes one signature at a time per key.
	a.mu.Lock()
	defer a.mu.Unlock()
	der, err := ts.CreateResponseWithOpts(a.Chain[0], a.Signer, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign time-stamp: %w", err)
	}
	return der, nil
}

// Roots is the local TSA's trust root: its CA.
func (a *Authority) Roots() []*x509.Certificate { return a.Chain[len(a.Chain)-1:] }
