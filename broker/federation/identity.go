package federation

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
)

// BusURIPrefix starts the SAN URI that binds a certificate to a bus:
// urn:docaxis:bus:HN. A bus certificate binds no agency, so it can sign
// trace entries and nothing an agency signs.
const BusURIPrefix = "urn:docaxis:bus:"

// BusIdentity is the key a bus signs its trace entries with, and its
// certificate chain (leaf first) up to the bus's CA.
type BusIdentity struct {
	Bus   string
	Key   *ecdsa.PrivateKey
	Chain []*x509.Certificate
}

// BusOf returns the bus a certificate binds, or "".
func BusOf(c *x509.Certificate) string {
	for _, u := range c.URIs {
		if s := u.String(); strings.HasPrefix(s, BusURIPrefix) {
			return strings.TrimPrefix(s, BusURIPrefix)
		}
	}
	return ""
}

// LoadBusIdentity loads the identity of bus from dir (bus.key, bus.crt),
// issuing it from ca on first use, or again when the stored one is for
// another bus, another CA, or has less than 30 days left.
func LoadBusIdentity(dir, bus string, ca *signing.CA) (*BusIdentity, error) {
	if err := CheckBusID(bus); err != nil {
		return nil, err
	}
	keyPath, certPath := filepath.Join(dir, "bus.key"), filepath.Join(dir, "bus.crt")
	kb, kerr := os.ReadFile(keyPath)
	cb, cerr := os.ReadFile(certPath)
	if kerr == nil && cerr == nil {
		id, err := parseBusIdentity(bus, kb, cb)
		if err != nil {
			return nil, fmt.Errorf("bus identity in %s: %w", dir, err)
		}
		leaf := id.Chain[0]
		if BusOf(leaf) == bus && len(id.Chain) > 1 && id.Chain[len(id.Chain)-1].Equal(ca.Cert) && time.Until(leaf.NotAfter) > 30*24*time.Hour {
			return id, nil
		}
	} else if !errors.Is(kerr, fs.ErrNotExist) && kerr != nil {
		return nil, fmt.Errorf("bus identity: %w", kerr)
	}
	id, err := issueBusIdentity(bus, ca)
	if err != nil {
		return nil, err
	}
	kp, err := signing.EncodeKey(id.Key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("save bus identity: %w", err)
	}
	// The key first: a certificate without its key is useless.
	for _, f := range []struct {
		path string
		data []byte
	}{{keyPath, kp}, {certPath, signing.EncodeCerts(id.Chain...)}} {
		if err := os.WriteFile(f.path+".tmp", f.data, 0o600); err != nil {
			return nil, fmt.Errorf("save bus identity: %w", err)
		}
		if err := os.Rename(f.path+".tmp", f.path); err != nil {
			return nil, fmt.Errorf("save bus identity: %w", err)
		}
	}
	return id, nil
}

func parseBusIdentity(bus string, keyPEM, certPEM []byte) (*BusIdentity, error) {
	key, err := signing.ParseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	ek, ok := key.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, errors.New("bus key is not ECDSA P-256")
	}
	chain, err := signing.ParseCerts(certPEM)
	if err != nil {
		return nil, err
	}
	if !ek.PublicKey.Equal(chain[0].PublicKey) {
		return nil, errors.New("bus key does not match its certificate")
	}
	return &BusIdentity{Bus: bus, Key: ek, Chain: chain}, nil
}

// issueBusIdentity creates a P-256 key and a two-year certificate from ca
// binding bus.
func issueBusIdentity(bus string, ca *signing.CA) (*BusIdentity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("bus key: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	u, err := url.Parse(BusURIPrefix + bus)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "docaxis bus " + bus, Organization: []string{"docaxis"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(2 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		URIs:         []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue bus certificate for %s: %w", bus, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &BusIdentity{Bus: bus, Key: key, Chain: []*x509.Certificate{cert, ca.Cert}}, nil
}

// AppendHop adds this bus's signed trace entry to the headers of a copy
// (raw, the signed envelope; copyID, its message id) after the entries
// prev, at time at: what the federation service does at each hop, for
// tools and tests that build federation traffic themselves.
func (id *BusIdentity) AppendHop(h nats.Header, prev []Hop, at time.Time, envelopeID, copyID string, raw []byte) (Hop, error) {
	return appendHop(h, id, prev, at, envelopeID, copyID, raw)
}
