package signing

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

// Revocations are kept per issuing CA, keyed by the CA's key (KeyID), never
// by its name: every development CA used to be called the same, and a CRL
// naming "docaxis development CA" revoked certificates of every bus. An
// entry of a CA's CRL applies only to a certificate that CA signed.

// crlState is the CRL in force for one CA.
type crlState struct {
	ca      *x509.Certificate
	number  *big.Int
	entries map[string]time.Time // serial (hex) -> revoked at
}

// issuedBy reports whether ca signed leaf: the name it gives as issuer and
// the signature both, so a CA with the same name but another key did not.
func issuedBy(leaf, ca *x509.Certificate) bool {
	return bytes.Equal(leaf.RawIssuer, ca.RawSubject) && leaf.CheckSignatureFrom(ca) == nil
}

// revokedAt tells whether leaf was revoked, by fingerprint or by a CRL
// entry of the CA that issued it. issuer is the leaf's issuer in a
// verified chain; when nil, the CAs whose CRLs list the leaf's serial are
// checked for having signed it.
func (t *Trust) revokedAt(leaf, issuer *x509.Certificate) (time.Time, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if at, ok := t.revoked[envelope.Fingerprint(leaf)]; ok {
		return at, true
	}
	serial := leaf.SerialNumber.Text(16)
	if issuer != nil {
		if st := t.crls[KeyID(issuer)]; st != nil {
			at, ok := st.entries[serial]
			return at, ok
		}
		return time.Time{}, false
	}
	for _, st := range t.crls {
		if at, ok := st.entries[serial]; ok && issuedBy(leaf, st.ca) {
			return at, true
		}
	}
	return time.Time{}, false
}

// RevocationOf reports whether leaf is revoked and since when: by
// fingerprint, or by the CRL of the CA that signed it.
func (t *Trust) RevocationOf(leaf *x509.Certificate) (time.Time, bool) { return t.revokedAt(leaf, nil) }

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

// CRLIssuer returns the trusted root that issued a CRL: the root the CRL
// names (issuer name, and authority key id when present) whose key signed
// it. A CRL signed by another root, even one of the same name, has none.
func (t *Trust) CRLIssuer(crl *x509.RevocationList) (*x509.Certificate, error) {
	for _, r := range t.Roots() {
		if namesCA(crl, r) && crl.CheckSignatureFrom(r) == nil {
			return r, nil
		}
	}
	return nil, fmt.Errorf("%w: CRL from %q is not signed by a trusted root of that name", ErrUntrusted, crl.Issuer.CommonName)
}

// namesCA reports whether crl names ca as its issuer.
func namesCA(crl *x509.RevocationList, ca *x509.Certificate) bool {
	if !bytes.Equal(crl.RawIssuer, ca.RawSubject) {
		return false
	}
	return len(crl.AuthorityKeyId) == 0 || len(ca.SubjectKeyId) == 0 || bytes.Equal(crl.AuthorityKeyId, ca.SubjectKeyId)
}

// ApplyCRL checks a CRL against the trusted roots (signed by the root it
// names) and puts it in force for that root: its entries revoke that
// root's certificates from their revocation times, and only those. A CRL
// replaces the root's previous one unless its number is lower
// (ErrStaleCRL): an old list cannot bring a revoked certificate back.
func (t *Trust) ApplyCRL(der []byte) (*x509.RevocationList, error) {
	return t.applyCRL("", der)
}

// ApplyCRLFor is ApplyCRL for a CRL stored under the key of a CA (the
// directory key crl.<KeyID>): it must be signed by the trusted root with
// that key.
func (t *Trust) ApplyCRLFor(keyID string, der []byte) (*x509.RevocationList, error) {
	if keyID == "" {
		return nil, fmt.Errorf("%w: CRL without a CA key id", ErrUntrusted)
	}
	return t.applyCRL(keyID, der)
}

// KeepCRL is ApplyCRLFor for a CRL whose CA may not be trusted yet (a
// directory delivers entries in any order): it is kept and applied when a
// root with key keyID is added. Other errors (not a CRL, signed by another
// key, stale) are returned.
func (t *Trust) KeepCRL(keyID string, der []byte) error {
	_, err := t.ApplyCRLFor(keyID, der)
	if err == nil || !errors.Is(err, ErrUntrusted) {
		return err
	}
	crl, perr := x509.ParseRevocationList(der)
	if perr != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.rootList {
		if KeyID(r) == keyID || namesCA(crl, r) && crl.CheckSignatureFrom(r) == nil {
			return err // a trusted root's key: the CRL itself is wrong
		}
	}
	t.pendingCRLs[keyID] = der
	return nil
}

func (t *Trust) applyCRL(keyID string, der []byte) (*x509.RevocationList, error) {
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, fmt.Errorf("parse CRL: %w", err)
	}
	issuer, err := t.CRLIssuer(crl)
	if err != nil {
		return nil, err
	}
	kid := KeyID(issuer)
	if keyID != "" && keyID != kid {
		return nil, fmt.Errorf("%w: CRL kept under CA key %s is signed by CA %q with key %s", ErrUntrusted, keyID, issuer.Subject.CommonName, kid)
	}
	number := crl.Number
	if number == nil {
		number = new(big.Int)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur := t.crls[kid]; cur != nil && number.Cmp(cur.number) < 0 {
		return nil, fmt.Errorf("%w: CRL number %s of CA %q, number %s is in force", ErrStaleCRL, number, issuer.Subject.CommonName, cur.number)
	}
	st := &crlState{ca: issuer, number: number, entries: make(map[string]time.Time, len(crl.RevokedCertificateEntries))}
	for _, e := range crl.RevokedCertificateEntries {
		st.entries[e.SerialNumber.Text(16)] = e.RevocationTime
	}
	t.crls[kid] = st
	delete(t.pendingCRLs, kid)
	t.gen++
	return crl, nil
}

// CRLNumber returns the number of the CRL in force for the CA with key
// keyID, and whether there is one.
func (t *Trust) CRLNumber(keyID string) (*big.Int, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	st := t.crls[keyID]
	if st == nil {
		return nil, false
	}
	return new(big.Int).Set(st.number), true
}

// WithdrawCA stops trusting the root with key keyID from at: a chain
// through it verifies only for a time before at (what it signed before
// stays valid, as for a revoked certificate). It is how a bus leaving a
// federation is withdrawn; an earlier withdrawal time is kept.
func (t *Trust) WithdrawCA(keyID string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if cur, ok := t.withdrawn[keyID]; ok && !at.Before(cur) {
		return
	}
	t.withdrawn[keyID] = at
	t.gen++
}

// Withdrawal returns when the root with key keyID was withdrawn.
func (t *Trust) Withdrawal(keyID string) (time.Time, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	at, ok := t.withdrawn[keyID]
	return at, ok
}
