package backup

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/jws"
)

// An archive is signed by the bus's audit key (Source.Signer): the entry
// manifest.jws, just before the manifest, is a JWS of the manifest's
// SHA-256 with the audit certificate chain. The seal and the digests say
// an archive is whole; the signature says which bus wrote it, so that a
// restore given the bus's CA (Target.TrustCA) refuses an archive rebuilt by
// someone who could write where backups are kept: without the audit key
// they cannot sign one, and an encrypted archive does not show the key.

// ManifestSignatureType is the content type of manifest.jws.
const ManifestSignatureType = "docaxis-backup-manifest+json"

const (
	signatureName     = "manifest.jws"
	caCertName        = homePrefix + "ca/ca.crt"
	maxSignatureBytes = 64 << 10
	maxCACertBytes    = 64 << 10
	// signedFormat is the first format that may carry manifest.jws: a
	// reader of format 1 refuses it as newer instead of as damaged.
	signedFormat = 2
)

var (
	// ErrNotSigned: the archive carries no signature, and the caller
	// asked for one (Target.TrustCA).
	ErrNotSigned = errors.New("backup not signed")
	// ErrUntrusted: the archive's signature or CA is not the bus's the
	// caller trusts.
	ErrUntrusted = errors.New("backup not signed by the trusted bus")
)

// manifestSignature is what manifest.jws signs.
type manifestSignature struct {
	ManifestSHA256 string `json:"manifest_sha256"`
}

// signManifest signs the digest of the manifest's bytes mb.
func signManifest(mb []byte, key crypto.Signer, chain []*x509.Certificate) ([]byte, error) {
	sum := sha256.Sum256(mb)
	payload, err := json.Marshal(manifestSignature{ManifestSHA256: hex.EncodeToString(sum[:])})
	if err != nil {
		return nil, err
	}
	return jws.Sign(payload, key, chain, jws.ContentType(ManifestSignatureType))
}

// checkManifestSignature checks manifest.jws against the manifest's bytes
// mb and returns the signer's chain. It establishes no trust in the chain
// (CheckSigner does).
func checkManifestSignature(sig, mb []byte) ([]*x509.Certificate, error) {
	s, err := jws.Open(sig, jws.ContentType(ManifestSignatureType))
	if err != nil {
		return nil, fmt.Errorf("%w: manifest signature: %v", ErrDamaged, err)
	}
	var p manifestSignature
	if err := json.Unmarshal(s.Payload, &p); err != nil {
		return nil, fmt.Errorf("%w: manifest signature: %v", ErrDamaged, err)
	}
	sum := sha256.Sum256(mb)
	if p.ManifestSHA256 != hex.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("%w: the manifest signature is of another manifest (SHA-256 %s, this one %x)", ErrDamaged, p.ManifestSHA256, sum)
	}
	return s.Chain, nil
}

// CheckSigner checks that the archive was written by the bus whose CA is
// ca: its manifest is signed by an audit certificate ca issued and that
// was valid when the archive was made, and the CA certificate it restores
// is ca. An archive without a signature fails with ErrNotSigned, one of
// another bus with ErrUntrusted.
func (m *Manifest) CheckSigner(ca *x509.Certificate) error {
	if len(m.SignedBy) == 0 {
		return fmt.Errorf("%w: it has no manifest signature (written by a docaxis before signed backups, or its signature removed)", ErrNotSigned)
	}
	leaf := m.SignedBy[0]
	fp := jws.Fingerprint(ca)
	if !slices.ContainsFunc(leaf.UnknownExtKeyUsage, func(o asn1.ObjectIdentifier) bool { return o.Equal(signing.OIDExtKeyUsageAudit) }) {
		return fmt.Errorf("%w: the manifest is signed by %q, not by a bus's audit key", ErrUntrusted, leaf.Subject.CommonName)
	}
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		return fmt.Errorf("%w: the audit certificate that signed it was not issued by CA %s (SHA-256 %s): %v", ErrUntrusted, ca.Subject.CommonName, fp, err)
	}
	if m.Created.Before(leaf.NotBefore) || m.Created.After(leaf.NotAfter) {
		return fmt.Errorf("%w: the audit certificate that signed it was not valid at %s", ErrUntrusted, m.Created)
	}
	if m.caCert == nil {
		return fmt.Errorf("%w: the archive holds no CA certificate (%s)", ErrUntrusted, caCertName)
	}
	if !bytes.Equal(m.caCert.Raw, ca.Raw) {
		return fmt.Errorf("%w: it would restore CA %s (SHA-256 %s), not the one trusted (SHA-256 %s)", ErrUntrusted, m.caCert.Subject.CommonName, jws.Fingerprint(m.caCert), fp)
	}
	return nil
}

// parseCACert reads the CA certificate file of a home (PEM).
func parseCACert(b []byte) *x509.Certificate {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil
	}
	return c
}
