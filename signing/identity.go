package signing

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

// AgencyURIPrefix starts the SAN URI that binds a certificate to an agency
// code: urn:docaxis:agency:000.00.00.G22.
const AgencyURIPrefix = "urn:docaxis:agency:"

// Identity is an agency's signing key with its certificate chain (leaf
// first).
type Identity struct {
	Agency string
	Key    crypto.Signer
	Chain  []*x509.Certificate
}

// Certificate returns the leaf certificate.
func (id *Identity) Certificate() *x509.Certificate { return id.Chain[0] }

// Seal validates, encodes and signs e as this identity. e.From must be the
// identity's agency.
func (id *Identity) Seal(e *envelope.Envelope, opts ...envelope.ValidateOption) ([]byte, error) {
	if e.From != id.Agency {
		return nil, fmt.Errorf("%w: envelope from %s, signing identity is %s", ErrAgencyMismatch, e.From, id.Agency)
	}
	leaf := id.Chain[0]
	if e.Created.Before(leaf.NotBefore) || e.Created.After(leaf.NotAfter) {
		return nil, fmt.Errorf("%w: certificate of %s is valid from %s to %s, envelope created %s", ErrExpired, id.Agency,
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), e.Created.UTC().Format(time.RFC3339))
	}
	return envelope.Seal(e, id.Key, id.Chain, opts...)
}

// NewIdentity checks that key matches the chain's leaf and returns the
// identity. The agency is the code the leaf binds, or agency when the leaf
// binds none (an imported certificate, bound explicitly by the operator).
func NewIdentity(agency string, key crypto.Signer, chain []*x509.Certificate) (*Identity, error) {
	if len(chain) == 0 {
		return nil, errors.New("identity: empty certificate chain")
	}
	leaf := chain[0]
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if !bytes.Equal(pubDER, leaf.RawSubjectPublicKeyInfo) {
		return nil, errors.New("identity: private key does not match the certificate")
	}
	if _, err := envelope.AlgorithmFor(key.Public()); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if bound := AgencyOf(leaf); bound != "" && bound != agency {
		return nil, fmt.Errorf("%w: certificate is bound to %s, not %s", ErrAgencyMismatch, bound, agency)
	}
	return &Identity{Agency: agency, Key: key, Chain: chain}, nil
}

// AgencyOf returns the agency code a certificate binds in its SAN URI, or "".
func AgencyOf(c *x509.Certificate) string {
	for _, u := range c.URIs {
		if s := u.String(); strings.HasPrefix(s, AgencyURIPrefix) {
			return strings.TrimPrefix(s, AgencyURIPrefix)
		}
	}
	return ""
}
