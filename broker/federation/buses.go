package federation

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bucket"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// BusEntry is a bus of the federation as the national directory lists it
// (key fedbus.<id>): its id, the root CA its agencies' and its own
// certificates chain to, and the agency codes bound to it. The national
// operator adds members after checking their CA out of band (docaxis
// federation member add); every bus then trusts exactly these roots, each
// for its own bus only. A member that left stays listed, marked Removed,
// so that what it sent before can still be verified.
type BusEntry struct {
	ID string `json:"id"`
	// CA is the PEM certificate of the bus's root CA.
	CA       string    `json:"ca"`
	National bool      `json:"national,omitempty"`
	Added    time.Time `json:"added"`
	// Codes are the code patterns bound to the bus (see ParseCodePattern);
	// none for a bus admitted before bindings existed.
	Codes []string `json:"codes,omitempty"`
	// FormerCAs are CAs the bus used before a rekey, each withdrawn from a
	// time: what they signed before it still verifies.
	FormerCAs []FormerCA `json:"former_cas,omitempty"`
	// Removed is when the bus left the federation (docaxis federation
	// member remove): its CAs are withdrawn from then, nothing is routed
	// to it, its entry and its agencies' entries stay for the record.
	Removed time.Time `json:"removed,omitzero"`
}

// FormerCA is a CA a bus no longer uses.
type FormerCA struct {
	CA        string    `json:"ca"`
	Withdrawn time.Time `json:"withdrawn"`
}

// ErrRemoved: the bus left the federation.
var ErrRemoved = errors.New("bus removed from the federation")

// cas returns the current CA and the former ones with their withdrawal
// times (the current one withdrawn too once the bus is removed).
func (b BusEntry) cas() (cur *x509.Certificate, former map[*x509.Certificate]time.Time, err error) {
	certs, err := signing.ParseCerts([]byte(b.CA))
	if err != nil {
		return nil, nil, fmt.Errorf("CA of bus %s: %w", b.ID, err)
	}
	former = map[*x509.Certificate]time.Time{}
	for _, f := range b.FormerCAs {
		fc, err := signing.ParseCerts([]byte(f.CA))
		if err != nil {
			return nil, nil, fmt.Errorf("former CA of bus %s: %w", b.ID, err)
		}
		former[fc[0]] = f.Withdrawn
	}
	return certs[0], former, nil
}

// BusOption adjusts RegisterBus.
type BusOption func(*busOptions)

type busOptions struct {
	codes    []string
	setCodes bool
}

// WithCodes binds code patterns to the bus (replacing its binding).
func WithCodes(patterns ...string) BusOption {
	return func(o *busOptions) { o.codes, o.setCodes = patterns, true }
}

// RegisterBus writes a bus of the federation in the directory of the bus
// c is connected to: the national bus, for its members. It is what
// `docaxis federation member add` does. A listed bus keeps its binding
// unless WithCodes is given; it cannot be given another CA here (that is
// RekeyBus), nor be admitted again with a CA withdrawn when it left.
func RegisterBus(ctx context.Context, c *broker.Client, id string, ca *x509.Certificate, national bool, opts ...BusOption) error {
	if err := CheckBusID(id); err != nil {
		return err
	}
	if !ca.IsCA {
		return fmt.Errorf("register bus %s: certificate %q is not a CA certificate", id, ca.Subject.CommonName)
	}
	var o busOptions
	for _, opt := range opts {
		opt(&o)
	}
	kv, err := c.JetStream().KeyValue(ctx, record.DirectoryBucket)
	if err != nil {
		return fmt.Errorf("register bus %s: %w", id, err)
	}
	caPEM := string(signing.EncodeCerts(ca))
	entry := BusEntry{ID: id, CA: caPEM, National: national, Added: time.Now().UTC()}
	var rev uint64
	cur, err := kv.Get(ctx, busKey(id))
	switch {
	case err == nil:
		var old BusEntry
		if err := json.Unmarshal(cur.Value(), &old); err != nil {
			return fmt.Errorf("register bus %s: its directory entry: %w", id, err)
		}
		rev = cur.Revision()
		if old.Removed.IsZero() && old.CA != caPEM {
			return fmt.Errorf("register bus %s: listed with another CA; replace it with 'docaxis federation member rekey %s --ca FILE'", id, id)
		}
		for _, f := range old.FormerCAs {
			if f.CA == caPEM {
				return fmt.Errorf("register bus %s: this CA was withdrawn at %s; admit the bus with a new CA", id, f.Withdrawn.Format(time.RFC3339))
			}
		}
		if !old.Removed.IsZero() {
			if old.CA == caPEM {
				return fmt.Errorf("register bus %s: %w at %s with this CA; admit it again with a new CA", id, ErrRemoved, old.Removed.Format(time.RFC3339))
			}
			// Admitted again with a new CA: the old one stays withdrawn.
			old.FormerCAs = append(old.FormerCAs, FormerCA{CA: old.CA, Withdrawn: old.Removed})
			old.Removed, old.CA, old.Added = time.Time{}, caPEM, entry.Added
		}
		old.National = national
		entry = old
	case errors.Is(err, jetstream.ErrKeyNotFound):
		cur = nil
	default:
		return fmt.Errorf("register bus %s: %w", id, err)
	}
	if o.setCodes {
		if err := checkBinding(ctx, c, id, o.codes); err != nil {
			return fmt.Errorf("register bus %s: %w", id, err)
		}
		b, _ := ParseCodePatterns(strings.Join(o.codes, ","))
		entry.Codes = b.Strings()
	}
	if cur != nil && string(mustJSON(entry)) == string(cur.Value()) {
		return nil // unchanged: keep its revision (members follow it)
	}
	return putBus(ctx, kv, entry, rev)
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// putBus writes entry, expecting revision rev (0: a new key).
func putBus(ctx context.Context, kv jetstream.KeyValue, entry BusEntry, rev uint64) error {
	b := mustJSON(entry)
	var err error
	if rev == 0 {
		_, err = kv.Create(ctx, busKey(entry.ID), b)
	} else {
		_, err = kv.Update(ctx, busKey(entry.ID), b, rev)
	}
	if bucket.Conflict(err) {
		return fmt.Errorf("bus %s: its directory entry changed meanwhile; run the command again", entry.ID)
	}
	if err != nil {
		return fmt.Errorf("bus %s in the directory: %w", entry.ID, err)
	}
	return nil
}

// checkBinding checks patterns for bus id against the other active buses'
// bindings: they may not overlap.
func checkBinding(ctx context.Context, c *broker.Client, id string, patterns []string) error {
	b, err := ParseCodePatterns(strings.Join(patterns, ","))
	if err != nil {
		return err
	}
	others, err := Buses(ctx, c)
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.ID == id || !o.Removed.IsZero() {
			continue
		}
		ob, err := ParseBinding(o.Codes)
		if err != nil {
			continue
		}
		if p, q, ok := b.Overlap(ob); ok {
			return fmt.Errorf("%w: %s overlaps %s, bound to bus %s", ErrCodePattern, p, q, o.ID)
		}
	}
	return nil
}

// BindCodes replaces the code patterns bound to bus id (a member or the
// national itself) in the directory of the national bus c is connected
// to. Agencies a bus registered outside its new binding are withdrawn
// from the national directory by the national's federation service.
func BindCodes(ctx context.Context, c *broker.Client, id string, patterns []string) (*BusEntry, error) {
	entry, rev, kv, err := getBus(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if !entry.Removed.IsZero() {
		return nil, fmt.Errorf("bind codes to bus %s: %w at %s", id, ErrRemoved, entry.Removed.Format(time.RFC3339))
	}
	if err := checkBinding(ctx, c, id, patterns); err != nil {
		return nil, fmt.Errorf("bind codes to bus %s: %w", id, err)
	}
	b, _ := ParseCodePatterns(strings.Join(patterns, ","))
	entry.Codes = b.Strings()
	return entry, putBus(ctx, kv, *entry, rev)
}

// Removal tells what RemoveBus did.
type Removal struct {
	Bus       string    `json:"bus"`
	At        time.Time `json:"at"`
	Agencies  []string  `json:"agencies"`  // withdrawn from the directory
	Withdrawn []string  `json:"withdrawn"` // key ids of the CAs withdrawn
}

// RemoveBus removes member id from the federation, in the directory of the
// national bus c is connected to (docaxis federation member remove): its
// CAs are withdrawn from now (keys crl.<key id>.withdrawn, which every bus
// copies, so no bus and no client trusts what they sign from now on), its
// code binding is dropped, its agencies are marked withdrawn (senders get
// broker.ErrWithdrawn) and the national stops its link. Entries stay in
// the directory and the record keeps what it exchanged. Its link
// credentials are revoked separately (auth.Authority.RevokeLeaf). Removing
// a bus again changes nothing.
func RemoveBus(ctx context.Context, c *broker.Client, id string) (*Removal, error) {
	entry, rev, kv, err := getBus(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if entry.National {
		return nil, fmt.Errorf("remove bus %s: it is the national bus", id)
	}
	r := &Removal{Bus: id, At: time.Now().UTC()}
	if !entry.Removed.IsZero() {
		r.At = entry.Removed
	}
	cur, former, err := entry.cas()
	if err != nil {
		return nil, err
	}
	// Withdrawals first: once the entry says removed, nothing it signs
	// after r.At may count anywhere.
	for ca, at := range former {
		if err := withdrawCA(ctx, kv, id, ca, at); err != nil {
			return nil, err
		}
	}
	if err := withdrawCA(ctx, kv, id, cur, r.At); err != nil {
		return nil, err
	}
	r.Withdrawn = append(r.Withdrawn, signing.KeyID(cur))
	if entry.Removed.IsZero() {
		entry.Removed, entry.Codes = r.At, nil
		if err := putBus(ctx, kv, *entry, rev); err != nil {
			return nil, err
		}
	}
	agencies, err := withdrawAgencies(ctx, kv, id, r.At)
	r.Agencies = agencies
	return r, err
}

// RekeyBus gives member id a new CA (docaxis federation member rekey): the
// current one is withdrawn from at (now when zero) and kept as a former
// CA. The member re-issues its agencies' certificates under the new CA and
// registers them again; until then what they sign after at is refused.
func RekeyBus(ctx context.Context, c *broker.Client, id string, ca *x509.Certificate, at time.Time) (*BusEntry, error) {
	if !ca.IsCA {
		return nil, fmt.Errorf("rekey bus %s: certificate %q is not a CA certificate", id, ca.Subject.CommonName)
	}
	entry, rev, kv, err := getBus(ctx, c, id)
	if err != nil {
		return nil, err
	}
	if !entry.Removed.IsZero() {
		return nil, fmt.Errorf("rekey bus %s: %w at %s; admit it again with member add", id, ErrRemoved, entry.Removed.Format(time.RFC3339))
	}
	if entry.National {
		return nil, fmt.Errorf("rekey bus %s: it is the national bus", id)
	}
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC()
	old, former, err := entry.cas()
	if err != nil {
		return nil, err
	}
	if old.Equal(ca) {
		return nil, fmt.Errorf("rekey bus %s: --ca is its current CA", id)
	}
	for f := range former {
		if f.Equal(ca) {
			return nil, fmt.Errorf("rekey bus %s: --ca is a CA it used before (withdrawn)", id)
		}
	}
	if err := withdrawCA(ctx, kv, id, old, at); err != nil {
		return nil, err
	}
	entry.FormerCAs = append(entry.FormerCAs, FormerCA{CA: entry.CA, Withdrawn: at})
	entry.CA = string(signing.EncodeCerts(ca))
	return entry, putBus(ctx, kv, *entry, rev)
}

func getBus(ctx context.Context, c *broker.Client, id string) (*BusEntry, uint64, jetstream.KeyValue, error) {
	if err := CheckBusID(id); err != nil {
		return nil, 0, nil, err
	}
	kv, err := c.JetStream().KeyValue(ctx, record.DirectoryBucket)
	if err != nil {
		return nil, 0, nil, err
	}
	e, err := kv.Get(ctx, busKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil, fmt.Errorf("%w %q: not a bus of this federation (docaxis federation member list)", ErrUnknownBus, id)
	}
	if err != nil {
		return nil, 0, nil, fmt.Errorf("bus %s: %w", id, err)
	}
	var b BusEntry
	if err := json.Unmarshal(e.Value(), &b); err != nil {
		return nil, 0, nil, fmt.Errorf("bus %s: bad directory entry: %w", id, err)
	}
	return &b, e.Revision(), kv, nil
}

// withdrawCA marks ca withdrawn from at (an earlier mark is kept).
func withdrawCA(ctx context.Context, kv jetstream.KeyValue, bus string, ca *x509.Certificate, at time.Time) error {
	key := broker.WithdrawnKey(ca)
	if e, err := kv.Get(ctx, key); err == nil {
		var w broker.Withdrawal
		if json.Unmarshal(e.Value(), &w) == nil && !w.At.IsZero() && !w.At.After(at) {
			return nil
		}
	}
	if _, err := kv.Put(ctx, key, mustJSON(broker.Withdrawal{Bus: bus, At: at.UTC()})); err != nil {
		return fmt.Errorf("withdraw the CA of bus %s: %w", bus, err)
	}
	return nil
}

// withdrawAgencies marks the directory entries of bus's agencies withdrawn.
func withdrawAgencies(ctx context.Context, kv jetstream.KeyValue, bus string, at time.Time) ([]string, error) {
	lister, err := kv.ListKeysFiltered(ctx, record.DirectoryAgencyFilter)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("withdraw the agencies of bus %s: %w", bus, err)
	}
	var keys []string
	done := []string{}
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		a, err := decodeAgency(e.Value())
		if err != nil || a.Bus != bus {
			continue
		}
		if a.Withdrawn.IsZero() {
			a.Withdrawn = at
			if _, err := kv.Update(ctx, k, mustJSON(a), e.Revision()); err != nil {
				return done, fmt.Errorf("withdraw %s of bus %s: %w", a.Code, bus, err)
			}
		}
		done = append(done, a.Code)
	}
	slices.Sort(done)
	return done, nil
}

// Buses lists the buses of the federation known to the directory of the
// bus c is connected to.
func Buses(ctx context.Context, c *broker.Client) ([]BusEntry, error) {
	kv, err := c.JetStream().KeyValue(ctx, record.DirectoryBucket)
	if err != nil {
		return nil, err
	}
	lister, err := kv.ListKeysFiltered(ctx, busKeyPrefix+"*")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
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

// trustBook keeps one Trust per bus, holding only that bus's CAs: an
// agency of bus X must chain to X's CA, so another member's CA cannot make
// up certificates for X's agencies, and a bus certificate must chain to
// its own bus's CA. It also keeps each bus's code binding.
type trustBook struct {
	mu       sync.RWMutex
	cas      map[string]*x509.Certificate
	keys     map[string]string // CA key id (current and former) -> bus
	trusts   map[string]*signing.Trust
	entries  map[string]BusEntry
	bindings map[string]Binding
	crls     map[string][]byte                       // CA key id -> DER
	bound    map[string]map[string]*x509.Certificate // bus -> code -> leaf (imported certificates)
	// settled once the directory is loaded; until then a change of
	// bindings is acted on once, at the end of the load (resync).
	settled, resync bool
}

// settle marks the directory loaded and reports whether bindings changed
// while it loaded.
func (b *trustBook) settle() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.settled = true
	r := b.resync
	b.resync = false
	return r
}

// resyncLater reports whether a change of bindings is to be acted on now;
// before the directory is loaded it is remembered for the end of the load.
func (b *trustBook) resyncLater() (now bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.settled {
		b.resync = true
	}
	return b.settled
}

func newTrustBook() *trustBook {
	return &trustBook{cas: map[string]*x509.Certificate{}, keys: map[string]string{}, trusts: map[string]*signing.Trust{},
		entries: map[string]BusEntry{}, bindings: map[string]Binding{}, crls: map[string][]byte{}, bound: map[string]map[string]*x509.Certificate{}}
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

// setBus trusts ca for bus (its only CA).
func (b *trustBook) setBus(bus string, ca *x509.Certificate) {
	b.setEntry(BusEntry{ID: bus, CA: string(signing.EncodeCerts(ca))}, ca, nil)
}

// setEntry applies a bus's directory entry: its CAs (former ones, and all
// once it is removed, withdrawn from their times), its binding. It
// reports whether the binding or the removal changed.
func (b *trustBook) setEntry(e BusEntry, ca *x509.Certificate, former map[*x509.Certificate]time.Time) (changed bool) {
	binding, _ := ParseBinding(e.Codes)
	b.mu.Lock()
	defer b.mu.Unlock()
	prev, had := b.entries[e.ID]
	changed = !had || !slices.Equal(prev.Codes, e.Codes) || !prev.Removed.Equal(e.Removed)
	same := had && prev.CA == e.CA && len(prev.FormerCAs) == len(e.FormerCAs) && prev.Removed.Equal(e.Removed)
	b.entries[e.ID], b.bindings[e.ID] = e, binding
	if same && b.trusts[e.ID] != nil {
		return changed
	}
	t := signing.NewTrust(ca)
	b.keys[signing.KeyID(ca)] = e.ID
	if !e.Removed.IsZero() {
		t.WithdrawCA(signing.KeyID(ca), e.Removed)
	}
	for f, at := range former {
		t.AddRoot(f)
		t.WithdrawCA(signing.KeyID(f), at)
		b.keys[signing.KeyID(f)] = e.ID
	}
	for code, leaf := range b.bound[e.ID] {
		t.Bind(code, leaf)
	}
	for kid, der := range b.crls {
		if b.keys[kid] == e.ID {
			_, _ = t.ApplyCRLFor(kid, der)
		}
	}
	b.cas[e.ID], b.trusts[e.ID] = ca, t
	return changed
}

func (b *trustBook) removeBus(bus string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.cas, bus)
	delete(b.trusts, bus)
	delete(b.entries, bus)
	delete(b.bindings, bus)
}

// entry returns the directory entry of bus as last applied.
func (b *trustBook) entry(bus string) (BusEntry, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	e, ok := b.entries[bus]
	return e, ok
}

// removed reports whether bus left the federation.
func (b *trustBook) removed(bus string) bool {
	e, ok := b.entry(bus)
	return ok && !e.Removed.IsZero()
}

// mayClaim tells whether bus may serve code under the bindings known.
func (b *trustBook) mayClaim(bus, code string) error {
	b.mu.RLock()
	active := make(map[string]Binding, len(b.bindings))
	for id, bd := range b.bindings {
		if b.entries[id].Removed.IsZero() {
			active[id] = bd
		}
	}
	b.mu.RUnlock()
	return claimCheck(active, bus, code)
}

// learnBinding records bus's binding ahead of its whole entry.
func (b *trustBook) learnBinding(bus string, codes []string) {
	binding, err := ParseBinding(codes)
	if err != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bindings[bus] = binding
}

// bindingOf returns bus's binding ("" when it has none) as one string.
func (b *trustBook) bindingOf(bus string) string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return strings.Join(b.bindings[bus].Strings(), ",")
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
	if b.bound[a.Bus] == nil {
		b.bound[a.Bus] = map[string]*x509.Certificate{}
	}
	b.bound[a.Bus][a.Code] = certs[0]
	if t := b.trusts[a.Bus]; t != nil {
		t.Bind(a.Code, certs[0])
	}
}

// applyCRL applies the CRL kept under the key of CA kid to the trust of
// the bus that CA belongs to, and returns that bus ("" when none, or when
// the CRL is not signed by that CA).
func (b *trustBook) applyCRL(kid string, der []byte) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.crls[kid] = der
	bus := b.keys[kid]
	t := b.trusts[bus]
	if t == nil {
		return ""
	}
	if _, err := t.ApplyCRLFor(kid, der); err != nil && !errors.Is(err, signing.ErrStaleCRL) {
		return ""
	}
	return bus
}

// crlKID returns the CA key id a CRL directory key names, and whether the
// key is a CRL's (not a withdrawal's).
func crlKID(key string) (string, bool) {
	kid, ok := strings.CutPrefix(key, broker.CRLPrefix)
	if !ok || strings.Contains(kid, ".") {
		return "", false
	}
	return kid, true
}

func agencyKey(code string) string { return record.DirectoryKey(code) }
