package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"time"
)

// KeyType selects the algorithm of a new key.
type KeyType string

const (
	KeyECDSA   KeyType = "ecdsa" // P-256, ES256: the default
	KeyEd25519 KeyType = "ed25519"
	KeyRSA     KeyType = "rsa" // 2048-bit, RS256
)

// NewKey generates a key of type t.
func NewKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case KeyECDSA, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case KeyEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case KeyRSA:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("unknown key type %q (ecdsa, ed25519, rsa)", t)
}

// CA is a certificate authority that issues agency certificates. The
// development CA lives under the home directory; production buses import
// their agencies' existing certificates instead.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// KeyID identifies a CA (or any certificate's key): the hex SHA-256 of its
// SubjectPublicKeyInfo. Names are not identities: two CAs may carry the
// same name, never the same key. Revocations, CRLs and withdrawals are
// keyed by it.
func KeyID(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// DevCAName is the name of a new development CA: unique, since it carries
// the start of its key id, and naming the bus when it is known.
func DevCAName(bus, keyID string) string {
	if bus == "" {
		return "docaxis development CA " + keyID[:16]
	}
	return "docaxis development CA of bus " + bus + " " + keyID[:16]
}

// NewCA creates a self-signed root valid for validity.
func NewCA(name string, validity time.Duration) (*CA, error) {
	key, err := NewKey(KeyECDSA)
	if err != nil {
		return nil, fmt.Errorf("create CA key: %w", err)
	}
	return newCA(key, func(string) string { return name }, validity)
}

// newCA makes the self-signed root of key, named by name(key id).
func newCA(key crypto.Signer, name func(keyID string) string, validity time.Duration) (*CA, error) {
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	sum := sha256.Sum256(spki)
	sn, err := serialNumber()
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	// Start an hour back for clock skew; the validity still counts from now
	// (a CA for an hour must not be born expired).
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name(hex.EncodeToString(sum[:])), Organization: []string{"docaxis"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Issue creates a key of type o.KeyType and an agency certificate
// (PurposeAgency) binding agency (SAN URI urn:docaxis:agency:CODE, subject
// serialNumber CODE) for an agency named name.
func (ca *CA) Issue(agency, name string, o IssueOptions) (*Identity, error) {
	o.Name = name
	key, chain, err := IssueKey(ca, PurposeAgency, agency, o.KeyType, o)
	if err != nil {
		return nil, err
	}
	return &Identity{Agency: agency, Key: key, Chain: chain}, nil
}

// IssueServer creates an ECDSA key and a TLS server certificate
// (PurposeTLS) for hosts (names or IPs).
func (ca *CA) IssueServer(hosts []string, validity time.Duration) (*x509.Certificate, crypto.Signer, error) {
	key, chain, err := IssueKey(ca, PurposeTLS, "", KeyECDSA, IssueOptions{Hosts: hosts, Validity: validity})
	if err != nil {
		return nil, nil, err
	}
	return chain[0], key, nil
}
