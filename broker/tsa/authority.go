package tsa

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

// NewAuthority creates a TSA key with a certificate from ca whose
// extended key usage is id-kp-timeStamping alone, marked critical, as RFC
// 3161 requires (and `openssl ts -verify` checks).
func NewAuthority(ca *signing.CA, name string, validity time.Duration) (*Authority, error) {
	key, err := signing.NewKey(signing.KeyECDSA)
	if err != nil {
		return nil, fmt.Errorf("create TSA key: %w", err)
	}
	cert, err := IssueCertificate(ca.Cert, ca.Key, key.Public(), name, validity)
	if err != nil {
		return nil, err
	}
	return &Authority{Signer: key, Chain: []*x509.Certificate{cert, ca.Cert}, Policy: LocalPolicy}, nil
}

// IssueCertificate issues a time-stamping certificate for pub from the CA
// (cert, key).
func IssueCertificate(caCert *x509.Certificate, caKey crypto.Signer, pub crypto.PublicKey, name string, validity time.Duration) (*x509.Certificate, error) {
	// The EKU extension by hand: crypto/x509 never marks it critical.
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	if err != nil {
		return nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("create TSA certificate: %w", err)
	}
	end := time.Now().Add(validity)
	if end.After(caCert.NotAfter) {
		end = caCert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:    sn,
		Subject:         pkix.Name{CommonName: name, Organization: []string{"docaxis"}},
		NotBefore:       time.Now().Add(-time.Hour),
		NotAfter:        end,
		KeyUsage:        x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		ExtraExtensions: []pkix.Extension{{Id: oidExtKeyUsage, Critical: true, Value: eku}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, pub, caKey)
	if err != nil {
		return nil, fmt.Errorf("create TSA certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// OpenAuthority loads the local TSA kept in dir (usually <home>/tsa),
// creating it with a certificate from ca on first use, and renewing it
// when its certificate no longer chains to ca or expires within 30 days.
// Tokens signed before carry their own certificate and keep verifying.
func OpenAuthority(dir string, ca *signing.CA) (*Authority, error) {
	a, err := loadAuthority(dir)
	if err == nil && authorityUsable(a, ca) {
		return a, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, signing.ErrKeyMismatch) {
		return nil, err
	}
	if a, err = NewAuthority(ca, "docaxis local TSA", 10*365*24*time.Hour); err != nil {
		return nil, err
	}
	if err := signing.SaveKeyPair(dir, a.Signer, a.Chain); err != nil {
		return nil, fmt.Errorf("save TSA key: %w", err)
	}
	return a, nil
}

func loadAuthority(dir string) (*Authority, error) {
	key, chain, err := signing.LoadKeyPair(dir)
	if err != nil {
		return nil, err
	}
	return &Authority{Signer: key, Chain: chain, Policy: LocalPolicy}, nil
}

func authorityUsable(a *Authority, ca *signing.CA) bool {
	leaf := a.Chain[0]
	pub, err := x509.MarshalPKIXPublicKey(a.Signer.Public())
	if err != nil || !bytes.Equal(pub, leaf.RawSubjectPublicKeyInfo) || IsTimeStampingCertificate(leaf) != nil {
		return false
	}
	if time.Until(leaf.NotAfter) < 30*24*time.Hour {
		return false
	}
	return leaf.CheckSignatureFrom(ca.Cert) == nil
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
