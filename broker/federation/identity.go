package federation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
)

// BusURIPrefix starts the SAN URI that binds a certificate to a bus:
// urn:docaxis:bus:HN. A bus certificate binds no agency, so it can sign
// trace entries and nothing an agency signs.
const BusURIPrefix = signing.BusURIPrefix

// BusIdentity is the key a bus signs its trace entries with, and its
// certificate chain (leaf first) up to the bus's CA.
type BusIdentity struct {
	Bus   string
	Key   *ecdsa.PrivateKey
	Chain []*x509.Certificate
}

// LoadBusIdentity loads the identity of bus from dir (bus.key, bus.crt),
// issuing it from ca (signing.PurposeBus: ECDSA P-256, two years) on first
// use, or again when the stored one is for another bus, another CA, or has
// less than 30 days left (signing.KeyPairFiles.OpenIssued).
func LoadBusIdentity(dir, bus string, ca *signing.CA) (*BusIdentity, error) {
	if err := CheckBusID(bus); err != nil {
		return nil, err
	}
	files := signing.KeyPairFiles{Dir: dir, Key: "bus.key", Cert: "bus.crt"}
	key, chain, err := files.OpenIssued(ca,
		func(key crypto.Signer, chain []*x509.Certificate) bool {
			ek, ok := key.(*ecdsa.PrivateKey)
			return ok && ek.Curve == elliptic.P256() && signing.BusOf(chain[0]) == bus && len(chain) > 1 && chain[len(chain)-1].Equal(ca.Cert)
		},
		func() (crypto.Signer, []*x509.Certificate, error) {
			return signing.IssueKey(ca, signing.PurposeBus, bus, signing.KeyECDSA, signing.IssueOptions{})
		})
	if err != nil {
		return nil, fmt.Errorf("bus identity in %s: %w", dir, err)
	}
	ek, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("bus identity in %s: key is %T, want ECDSA P-256", dir, key)
	}
	return &BusIdentity{Bus: bus, Key: ek, Chain: chain}, nil
}

// AppendHop adds this bus's signed trace entry to the headers of a copy
// (raw, the signed envelope; copyID, its message id) after the entries
// prev, at time at: what the federation service does at each hop, for
// tools and tests that build federation traffic themselves.
func (id *BusIdentity) AppendHop(h nats.Header, prev []Hop, at time.Time, envelopeID, copyID string, raw []byte) (Hop, error) {
	return appendHop(h, id, prev, at, envelopeID, copyID, raw)
}
