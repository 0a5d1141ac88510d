package federation

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// BusEntry is a bus of the federation as the national directory lists it
// (key fedbus.<id>): its id and the root CA its agencies' and its own
// certificates chain to. The national operator adds members after checking
// their CA out of band (docaxis federation member add); every bus then
// trusts exactly these roots, each for its own bus only.
type BusEntry struct {
	ID string `json:"id"`
	// CA is the PEM certificate of the bus's root CA.
	CA       string    `json:"ca"`
	National bool      `json:"national,omitempty"`
	Added    time.Time `json:"added"`
}

// RegisterBus writes (or replaces) a bus of the federation in the
// directory of the bus c is connected to: the national bus, for its
// members. It is what `docaxis federation member add` does.
func RegisterBus(ctx context.Context, c *broker.Client, id string, ca *x509.Certificate, national bool) error {
	if err := CheckBusID(id); err != nil {
		return err
	}
	if !ca.IsCA {
		return fmt.Errorf("register bus %s: certificate %q is not a CA certificate", id, ca.Subject.CommonName)
	}
	kv, err := c.JetStream().KeyValue(ctx, broker.DirectoryBucket)
	if err != nil {
		return fmt.Errorf("register bus %s: %w", id, err)
	}
	b, _ := json.Marshal(BusEntry{ID: id, CA: string(signing.EncodeCerts(ca)), National: national, Added: time.Now().UTC()})
	if e, err := kv.Get(ctx, busKey(id)); err == nil {
		var old BusEntry
		if json.Unmarshal(e.Value(), &old) == nil && old.CA == string(signing.EncodeCerts(ca)) && old.National == national {
			return nil // unchanged: keep its revision (members follow it)
		}
	}
	if _, err := kv.Put(ctx, busKey(id), b); err != nil {
		return fmt.Errorf("register bus %s in the directory: %w", id, err)
	}
	return nil
}

// Buses lists the buses of the federation known to the directory of the
// bus c is connected to.
func Buses(ctx context.Context, c *broker.Client) ([]BusEntry, error) {
	kv, err := c.JetStream().KeyValue(ctx, broker.DirectoryBucket)
	if err != nil {
		return nil, err
	}
	lister, err := kv.ListKeysFiltered(ctx, busKeyPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("list buses: %w", err)
	}
	var out []BusEntry
	for k := range lister.Keys() {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list buses: %w", err)
		}
		var b BusEntry
		if err := json.Unmarshal(e.Value(), &b); err == nil {
			out = append(out, b)
		}
	}
	return out, nil
}

// trustBook keeps one Trust per bus, holding only that bus's CA: an agency
// of bus X must chain to X's CA, so another member's CA cannot make up
// certificates for X's agencies, and a bus certificate must chain to its
// own bus's CA.
type trustBook struct {
	mu       sync.RWMutex
	cas      map[string]*x509.Certificate
	trusts   map[string]*signing.Trust
	crls     map[string][]byte                       // directory key -> DER
	bindings map[string]map[string]*x509.Certificate // bus -> code -> leaf (imported certificates)
}

func newTrustBook() *trustBook {
	return &trustBook{cas: map[string]*x509.Certificate{}, trusts: map[string]*signing.Trust{}, crls: map[string][]byte{}, bindings: map[string]map[string]*x509.Certificate{}}
}

// trustFor returns the trust of bus, nil when the bus is unknown.
func (b *trustBook) trustFor(bus string) *signing.Trust {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.trusts[bus]
}

func (b *trustBook) ca(bus string) *x509.Certificate {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.cas[bus]
}

func (b *trustBook) known() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]string, 0, len(b.cas))
	for id := range b.cas {
		out = append(out, id)
	}
	return out
}

func (b *trustBook) setBus(bus string, ca *x509.Certificate) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if old := b.cas[bus]; old != nil && old.Equal(ca) {
		return
	}
	t := signing.NewTrust(ca)
	for code, leaf := range b.bindings[bus] {
		t.Bind(code, leaf)
	}
	for _, der := range b.crls {
		_, _ = t.ApplyCRL(der) // only the CRLs this CA signed apply
	}
	b.cas[bus], b.trusts[bus] = ca, t
}

func (b *trustBook) removeBus(bus string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.cas, bus)
	delete(b.trusts, bus)
}

// bind records an imported certificate (one that names no agency) as the
// agency's, for the trust of the agency's bus.
func (b *trustBook) bind(a broker.Agency) {
	certs, err := signing.ParseCerts([]byte(a.Certificate))
	if err != nil || signing.AgencyOf(certs[0]) != "" || a.Bus == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bindings[a.Bus] == nil {
		b.bindings[a.Bus] = map[string]*x509.Certificate{}
	}
	b.bindings[a.Bus][a.Code] = certs[0]
	if t := b.trusts[a.Bus]; t != nil {
		t.Bind(a.Code, certs[0])
	}
}

// applyCRL applies a CRL to the trust of the bus whose CA signed it and
// returns that bus ("" when none did).
func (b *trustBook) applyCRL(key string, der []byte) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.crls[key] = der
	for bus, t := range b.trusts {
		if _, err := t.ApplyCRL(der); err == nil {
			return bus
		}
	}
	return ""
}

// crlKey is the directory key of a CRL (as broker.Client.PublishCRL names it).
func crlKey(crl *x509.RevocationList) string {
	sum := sha256.Sum256(crl.RawIssuer)
	return "crl." + hex.EncodeToString(sum[:])
}

func agencyKey(code string) string { return "agency." + envelope.Token(code) }
