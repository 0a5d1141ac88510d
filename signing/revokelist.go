package signing

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// The development CA's revocations are kept beside it (ca/revoked.json)
// so that each new CRL lists them all, with a number that grows.
type revocationFile struct {
	Number  int64             `json:"number"`
	Revoked map[string]string `json:"revoked"` // serial (hex) -> RFC 3339
	Agency  map[string]string `json:"agency"`  // serial (hex) -> agency code
}

// ErrNotIssuedHere: the certificate was not issued by this keystore's CA,
// so its CRL cannot revoke it.
var ErrNotIssuedHere = errors.New("certificate not issued by this CA")

// RevokeCertificate records that leaf (agency's certificate) is revoked
// from at and returns a new CRL of the development CA listing every
// revocation recorded so far. leaf must be one the CA issued: a CRL entry
// of this CA means nothing for another CA's certificate.
func (k *Keystore) RevokeCertificate(leaf *x509.Certificate, agency string, at time.Time, validity time.Duration) ([]byte, error) {
	ca, err := k.CA()
	if err != nil {
		return nil, err
	}
	if !issuedBy(leaf, ca.Cert) {
		return nil, fmt.Errorf("%w: the certificate of %s (serial %s) was issued by %q, not by this bus's CA %q (key %s)",
			ErrNotIssuedHere, agency, leaf.SerialNumber.Text(16), leaf.Issuer.CommonName, ca.Cert.Subject.CommonName, KeyID(ca.Cert)[:16])
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	path := filepath.Join(k.Dir, "ca", "revoked.json")
	rf := revocationFile{Revoked: map[string]string{}, Agency: map[string]string{}}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &rf); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	if rf.Revoked == nil {
		rf.Revoked = map[string]string{}
	}
	if rf.Agency == nil {
		rf.Agency = map[string]string{}
	}
	serial := leaf.SerialNumber.Text(16)
	rf.Revoked[serial] = at.UTC().Format(time.RFC3339Nano)
	rf.Agency[serial] = agency
	rf.Number++
	entries := make([]Revocation, 0, len(rf.Revoked))
	for s, when := range rf.Revoked {
		n, ok := new(big.Int).SetString(s, 16)
		t, err := time.Parse(time.RFC3339Nano, when)
		if !ok || err != nil {
			return nil, fmt.Errorf("%s: bad entry %s", path, s)
		}
		entries = append(entries, Revocation{Serial: n, At: t})
	}
	der, err := ca.NewCRL(entries, rf.Number, validity)
	if err != nil {
		return nil, err
	}
	// Recorded before it is published: a number is never used twice.
	b, _ := json.MarshalIndent(rf, "", "  ")
	if err := writeFiles(filepath.Join(k.Dir, "ca"), file{"revoked.json", b}); err != nil {
		return nil, fmt.Errorf("save revocations: %w", err)
	}
	return der, nil
}
