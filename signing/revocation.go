package signing

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

// revocationKey names a certificate by issuer and serial, as a CRL does.
func revocationKey(rawIssuer []byte, serial *big.Int) string {
	sum := sha256.Sum256(rawIssuer)
	return "crl:" + hex.EncodeToString(sum[:]) + ":" + serial.Text(16)
}

// revokedAt tells whether leaf was revoked, by fingerprint or by a CRL
// entry of its issuer.
func (t *Trust) revokedAt(leaf *x509.Certificate) (time.Time, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if at, ok := t.revoked[envelope.Fingerprint(leaf)]; ok {
		return at, true
	}
	at, ok := t.revoked[revocationKey(leaf.RawIssuer, leaf.SerialNumber)]
	return at, ok
}

// RevocationOf reports whether leaf is revoked and since when.
func (t *Trust) RevocationOf(leaf *x509.Certificate) (time.Time, bool) { return t.revokedAt(leaf) }

// Revocation is one entry of a CRL.
type Revocation struct {
	Serial *big.Int
	At     time.Time
}

// NewCRL returns a CRL (DER) signed by ca listing revoked certificates;
// number must grow with each new CRL of the CA.
func (ca *CA) NewCRL(entries []Revocation, number int64, validity time.Duration) ([]byte, error) {
	now := time.Now().UTC()
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(number),
		ThisUpdate: now,
		NextUpdate: now.Add(validity),
	}
	for _, e := range entries {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: e.Serial, RevocationTime: e.At.UTC()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("create CRL: %w", err)
	}
	return der, nil
}

// ApplyCRL checks a CRL's signature against the trusted roots and marks
// its entries revoked from their revocation times. A CRL not signed by a
// trusted root is refused.
func (t *Trust) ApplyCRL(der []byte) (*x509.RevocationList, error) {
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: %w", err)
	}
	var issuer *x509.Certificate
	for _, r := range t.Roots() {
		if crl.CheckSignatureFrom(r) == nil {
			issuer = r
			break
		}
	}
	if issuer == nil {
		return nil, fmt.Errorf("%w: CRL from %q is not signed by a trusted root", ErrUntrusted, crl.Issuer.CommonName)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range crl.RevokedCertificateEntries {
		t.revoked[revocationKey(issuer.RawSubject, e.SerialNumber)] = e.RevocationTime
	}
	t.gen++
	return crl, nil
}
