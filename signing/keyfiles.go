package signing

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// A key and its certificate chain kept in a folder, the one way every
// part of the bus stores one (the development CA, agencies, systems, the
// audit key, the local TSA, the bus's federation key).
const (
	KeyFile  = "key.pem"  // PKCS #8 private key
	CertFile = "cert.pem" // certificate chain, leaf first
)

// RenewBefore is how long before its end OpenIssued replaces a
// certificate.
const RenewBefore = 30 * 24 * time.Hour

// ErrKeyMismatch: the key file does not match the certificate beside it
// (a crash between the two writes of SaveKeyPair): make a new pair.
var ErrKeyMismatch = errors.New("key does not match its certificate")

// KeyPairFiles is where a key pair is kept: a folder and the names of its
// two files.
type KeyPairFiles struct {
	Dir  string
	Key  string // PKCS #8 private key
	Cert string // certificate chain, leaf first
}

// KeyPairIn is the pair kept in dir as KeyFile and CertFile.
func KeyPairIn(dir string) KeyPairFiles { return KeyPairFiles{Dir: dir, Key: KeyFile, Cert: CertFile} }

// SaveKeyPair writes key and chain into dir as KeyFile and CertFile
// (KeyPairFiles.Save).
func SaveKeyPair(dir string, key crypto.Signer, chain []*x509.Certificate) error {
	return KeyPairIn(dir).Save(key, chain)
}

// LoadKeyPair reads the key and chain SaveKeyPair wrote in dir
// (KeyPairFiles.Load).
func LoadKeyPair(dir string) (crypto.Signer, []*x509.Certificate, error) {
	return KeyPairIn(dir).Load()
}

// Save writes key and chain, each file replaced atomically and readable
// by the owner only. The key goes first and the certificate last: the
// certificate marks a complete pair. A crash in between leaves either no
// certificate (nothing is there: a new pair is made) or a new key beside
// the old certificate, which Load refuses (ErrKeyMismatch) and the owner
// replaces; never a pair that verifies as something it is not.
func (f KeyPairFiles) Save(key crypto.Signer, chain []*x509.Certificate) error {
	kp, err := EncodeKey(key)
	if err != nil {
		return err
	}
	if err := writeFiles(f.Dir, file{f.Key, kp}, file{f.Cert, EncodeCerts(chain...)}); err != nil {
		return fmt.Errorf("save key in %s: %w", f.Dir, err)
	}
	return nil
}

// Load reads the key and chain Save wrote. A missing file is an error
// wrapping fs.ErrNotExist; a key that does not match the leaf certificate
// is refused (ErrKeyMismatch).
func (f KeyPairFiles) Load() (crypto.Signer, []*x509.Certificate, error) {
	kb, err := os.ReadFile(filepath.Join(f.Dir, f.Key))
	if err != nil {
		return nil, nil, err
	}
	cb, err := os.ReadFile(filepath.Join(f.Dir, f.Cert))
	if err != nil {
		return nil, nil, err
	}
	key, err := ParseKey(kb)
	if err != nil {
		return nil, nil, fmt.Errorf("load key %s: %w", f.Dir, err)
	}
	chain, err := ParseCerts(cb)
	if err != nil || len(chain) == 0 {
		return nil, nil, fmt.Errorf("load certificate %s: %v", f.Dir, err)
	}
	if k, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(chain[0].PublicKey) {
		return nil, nil, fmt.Errorf("load key %s: %w %q", f.Dir, ErrKeyMismatch, chain[0].Subject.CommonName)
	}
	return key, chain, nil
}

// OpenIssued opens the key pair kept in dir as KeyFile and CertFile
// (KeyPairFiles.OpenIssued).
func OpenIssued(dir string, ca *CA, usable func(crypto.Signer, []*x509.Certificate) bool,
	issue func() (crypto.Signer, []*x509.Certificate, error)) (crypto.Signer, []*x509.Certificate, error) {
	return KeyPairIn(dir).OpenIssued(ca, usable, issue)
}

// OpenIssued loads the key pair, or issues and saves a new one on first
// use and whenever the stored one may no longer serve: its key does not
// match its certificate (a crash between Save's writes), its certificate
// was not issued by ca, ends within RenewBefore, or usable (when not nil)
// says no. What was signed with an older pair carries its own certificate
// and keeps verifying. Any other error reading the pair is returned: a
// file that cannot be read is not replaced.
func (f KeyPairFiles) OpenIssued(ca *CA, usable func(crypto.Signer, []*x509.Certificate) bool,
	issue func() (crypto.Signer, []*x509.Certificate, error)) (crypto.Signer, []*x509.Certificate, error) {
	key, chain, err := f.Load()
	if err == nil && freshFrom(chain, ca) && (usable == nil || usable(key, chain)) {
		return key, chain, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrKeyMismatch) {
		return nil, nil, err
	}
	if key, chain, err = issue(); err != nil {
		return nil, nil, err
	}
	if err := f.Save(key, chain); err != nil {
		return nil, nil, err
	}
	return key, chain, nil
}

// freshFrom reports whether the chain's leaf was issued by ca and has more
// than RenewBefore left.
func freshFrom(chain []*x509.Certificate, ca *CA) bool {
	leaf := chain[0]
	return time.Until(leaf.NotAfter) >= RenewBefore && leaf.CheckSignatureFrom(ca.Cert) == nil
}

type file struct {
	name string
	data []byte
}

// writeFiles writes files into dir in order, each atomically (temp file,
// synced, then renamed) so that a crash never leaves half a file, with
// mode 0600 in a 0700 folder: the one writer of key material and the
// CA's revocation list.
func writeFiles(dir string, files ...file) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range files {
		tmp := filepath.Join(dir, "."+f.name+".tmp")
		// A stale temp file from a crash would keep its old mode.
		if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := writeSynced(tmp, f.data); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
			return err
		}
	}
	return nil
}

func writeSynced(path string, data []byte) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
