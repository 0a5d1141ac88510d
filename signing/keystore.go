package signing

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

// Keystore keeps the development CA and agency identities in a directory:
//
//	DIR/ca/ca.crt, DIR/ca/ca.key
//	DIR/agencies/<code>/cert.pem (chain, leaf first), DIR/agencies/<code>/key.pem
//
// Keys are written with mode 0600.
type Keystore struct {
	Dir string
	mu  sync.Mutex
}

// OpenKeystore returns the keystore in dir, creating the directory.
func OpenKeystore(dir string) (*Keystore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open keystore %s: %w", dir, err)
	}
	return &Keystore{Dir: dir}, nil
}

// CA loads the development CA, creating it on first use.
func (k *Keystore) CA() (*CA, error) { return k.CAFor("") }

// CAFor loads the development CA, creating it on first use with a name
// that carries bus (when not empty) and the start of its key id, so that
// no two buses' CAs share a name. A CA created before names were unique
// is kept as it is: CAs are told apart by their keys (KeyID).
func (k *Keystore) CAFor(bus string) (*CA, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	files := k.caFiles()
	if _, err := os.Stat(filepath.Join(files.Dir, files.Cert)); errors.Is(err, fs.ErrNotExist) {
		key, err := NewKey(KeyECDSA)
		if err != nil {
			return nil, fmt.Errorf("create CA key: %w", err)
		}
		ca, err := newCA(key, func(kid string) string { return DevCAName(bus, kid) }, 10*365*24*time.Hour)
		if err != nil {
			return nil, err
		}
		if err := files.Save(ca.Key, []*x509.Certificate{ca.Cert}); err != nil {
			return nil, fmt.Errorf("save CA: %w", err)
		}
		return ca, nil
	}
	key, chain, err := files.Load()
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	return &CA{Cert: chain[0], Key: key}, nil
}

// caFiles is where the development CA is kept: DIR/ca/ca.key and
// DIR/ca/ca.crt, the certificate written last (it marks a complete CA).
func (k *Keystore) caFiles() KeyPairFiles {
	return KeyPairFiles{Dir: filepath.Join(k.Dir, "ca"), Key: "ca.key", Cert: "ca.crt"}
}

// CACert returns the CA certificate if one exists, without creating it.
func (k *Keystore) CACert() (*x509.Certificate, error) {
	certs, err := readCerts(filepath.Join(k.Dir, "ca", "ca.crt"))
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// Save stores id under its agency code.
func (k *Keystore) Save(id *Identity) error {
	// The code names a folder: refuse what could point outside the keystore.
	if err := envelope.CheckNonStandardCode(id.Agency); err != nil {
		return fmt.Errorf("save identity: %w", err)
	}
	if err := SaveKeyPair(filepath.Join(k.Dir, "agencies", id.Agency), id.Key, id.Chain); err != nil {
		return fmt.Errorf("save identity %s: %w", id.Agency, err)
	}
	return nil
}

// Identity loads the identity of agency.
func (k *Keystore) Identity(agency string) (*Identity, error) {
	if err := envelope.CheckNonStandardCode(agency); err != nil {
		return nil, err
	}
	dir := filepath.Join(k.Dir, "agencies", agency)
	key, chain, err := LoadKeyPair(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w %s: no key in %s (run 'docaxis agency add %s')", ErrNoIdentity, agency, dir, agency)
	}
	if err != nil {
		return nil, fmt.Errorf("load identity %s: %w", agency, err)
	}
	return NewIdentity(agency, key, chain)
}

// Agencies lists the agencies with a stored identity.
func (k *Keystore) Agencies() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(k.Dir, "agencies"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificates: %w", err)
	}
	certs, err := ParseCerts(b)
	if err != nil {
		return nil, fmt.Errorf("read certificates %s: %w", path, err)
	}
	return certs, nil
}

// SaveSystem stores the identity of document system id (IssueSystem).
func (k *Keystore) SaveSystem(id *Identity) error {
	if err := envelope.CheckNonStandardCode(id.Agency); err != nil {
		return fmt.Errorf("save system identity: %w", err)
	}
	if err := SaveKeyPair(k.SystemDir(id.Agency), id.Key, id.Chain); err != nil {
		return fmt.Errorf("save system identity %s: %w", id.Agency, err)
	}
	return nil
}

// SystemDir is the folder of document system id's key, certificate and
// credentials.
func (k *Keystore) SystemDir(id string) string { return filepath.Join(k.Dir, "systems", id) }

// SystemIdentity loads the identity of document system id.
func (k *Keystore) SystemIdentity(id string) (*Identity, error) {
	if err := envelope.CheckNonStandardCode(id); err != nil {
		return nil, err
	}
	dir := k.SystemDir(id)
	key, chain, err := LoadKeyPair(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w system %s: no key in %s (run 'docaxis system add %s')", ErrNoIdentity, id, dir, id)
	}
	if err != nil {
		return nil, fmt.Errorf("load system identity %s: %w", id, err)
	}
	if SystemOf(chain[0]) != id {
		return nil, fmt.Errorf("load system identity %s: %w: certificate names system %q", id, ErrAgencyMismatch, SystemOf(chain[0]))
	}
	return &Identity{Agency: id, Key: key, Chain: chain}, nil
}
