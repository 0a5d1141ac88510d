package signing

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// A key and its certificate chain kept in a folder, the one way every
// part of the bus stores one (agencies, systems, the audit key, the local
// TSA).
const (
	KeyFile  = "key.pem"  // PKCS #8 private key
	CertFile = "cert.pem" // certificate chain, leaf first
)

// ErrKeyMismatch: the key file does not match the certificate beside it
// (a crash between the two writes of SaveKeyPair): make a new pair.
var ErrKeyMismatch = errors.New("key does not match its certificate")

// SaveKeyPair writes key and chain into dir, each file replaced
// atomically, readable by the owner only. The certificate goes first: a
// crash in between leaves a key that does not match the certificate,
// which LoadKeyPair refuses and the caller replaces, never a new key
// beside an old certificate that would verify as the old one.
func SaveKeyPair(dir string, key crypto.Signer, chain []*x509.Certificate) error {
	kp, err := EncodeKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save key in %s: %w", dir, err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{CertFile, EncodeCerts(chain...)}, {KeyFile, kp}} {
		tmp := filepath.Join(dir, "."+f.name+".tmp")
		// A stale temp file from a crash would keep its old mode.
		if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("save key in %s: %w", dir, err)
		}
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return fmt.Errorf("save key in %s: %w", dir, err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
			return fmt.Errorf("save key in %s: %w", dir, err)
		}
	}
	return nil
}

// LoadKeyPair reads the key and chain SaveKeyPair wrote in dir. A missing
// file is an error wrapping fs.ErrNotExist; a key that does not match the
// leaf certificate is refused.
func LoadKeyPair(dir string) (crypto.Signer, []*x509.Certificate, error) {
	kb, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, nil, err
	}
	cb, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, nil, err
	}
	key, err := ParseKey(kb)
	if err != nil {
		return nil, nil, fmt.Errorf("load key %s: %w", dir, err)
	}
	chain, err := ParseCerts(cb)
	if err != nil || len(chain) == 0 {
		return nil, nil, fmt.Errorf("load certificate %s: %v", dir, err)
	}
	if k, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(chain[0].PublicKey) {
		return nil, nil, fmt.Errorf("load key %s: %w %q", dir, ErrKeyMismatch, chain[0].Subject.CommonName)
	}
	return key, chain, nil
}
