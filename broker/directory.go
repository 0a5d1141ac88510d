package broker

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker/bucket"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// Agency is a directory entry: an agency known to the bus, where it sits
// in the hierarchy, and who signs for it: its own certificate chain, or
// the document system that serves it (System), or both.
type Agency struct {
	Code        string `json:"code"`
	Name        string `json:"name"`
	NonStandard bool   `json:"nonstandard,omitempty"`
	// Certificate is the agency's own PEM chain, leaf first; empty for an
	// agency that only a system signs for, or a directory-only entry.
	Certificate string    `json:"certificate,omitempty"`
	Added       time.Time `json:"added"`
	Bus         string    `json:"bus,omitempty"`
	// Withdrawn is set when the bus serving the agency left the federation:
	// the entry stays for the record, nothing is routed to it (ErrWithdrawn).
	Withdrawn time.Time `json:"withdrawn,omitzero"`
	// Parent is the code of the unit above it (ministry/province →
	// department → district → commune); "" at the top.
	Parent  string `json:"parent,omitempty"`
	OldCode string `json:"old_code,omitempty"`
	Email   string `json:"email,omitempty"`
	// System is the id of the document system that sends and receives for
	// the agency, "" when it has its own credentials or none.
	System string `json:"system,omitempty"`
	// Bindings are the signed bindings of the agency to systems (JWS by
	// the bus's CA, see signing.Binding), oldest first: what receivers
	// check a system's signature for the agency against.
	Bindings []string `json:"bindings,omitempty"`
	// State is StateActive (also ""), StateSuspended or StateDeleted; a
	// deleted entry stays for the record with the time in Deleted.
	State   string    `json:"state,omitempty"`
	Deleted time.Time `json:"deleted,omitzero"`
	Updated time.Time `json:"updated,omitzero"`
	// Version is the directory version of this entry's last change (not
	// stored: the bucket's revision, set when read).
	Version uint64 `json:"version,omitempty"`

	// bound: Bindings were left out of this in-memory copy (the bus's
	// client keeps every entry, but not its bindings: see
	// directory.bindings).
	bound bool
}

// Agency states.
const (
	StateActive    = "active"
	StateSuspended = "suspended"
	StateDeleted   = "deleted"
)

// directory is what a client knows of the directory bucket. The bus's own
// client keeps a live copy (a watch): recipients are checked and
// certificates bound without a round trip per send. An agency's client may
// not follow the bucket: it reads by key what it needs (view, see
// dirview.go) and keeps it briefly.
type directory struct {
	kv       keyStore    // a jetstream.KeyValue for the bus's client; read-only by key for an agency's
	direct   *directKV   // the same bucket read by direct get: listings and changes since a version
	view     *agencyView // an agency's client: what is read by key, and when
	trust    *signing.Trust
	useRoots bool
	log      *slog.Logger
	mu       sync.RWMutex
	agencies map[string]Agency // all of them for the bus's client; those read lately for an agency's
	// bindingsRead: the system bindings the bus's client read lately, by
	// agency (its copy of each entry leaves them out).
	bindingsRead map[string]bindingsCopy
	limits       Limits
	bus          string // this bus's id in a federation (key "bus"), "" alone
	cancel       context.CancelFunc
	done         chan struct{}
}

func openDirectory(ctx context.Context, js jetstream.JetStream, trust *signing.Trust, useRoots bool, log *slog.Logger) (*directory, error) {
	kv, err := js.KeyValue(ctx, record.DirectoryBucket)
	if err != nil {
		return nil, fmt.Errorf("open directory bucket %s (is 'docaxis serve' running on this bus?): %w", record.DirectoryBucket, err)
	}
	d := &directory{kv: kv, trust: trust, useRoots: useRoots, log: log, agencies: map[string]Agency{}, limits: DefaultLimits, done: make(chan struct{}),
		bindingsRead: map[string]bindingsCopy{},
		direct:       &directKV{nc: js.Conn(), js: js, bucket: record.DirectoryBucket, timeout: 30 * time.Second}}
	trust.SetBindings(d.bindings)
	wctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch directory: %w", err)
	}
	// Apply the initial values before returning, then keep following.
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				go d.follow(w, log)
				return d, nil
			}
			d.apply(e, log)
		case <-ctx.Done():
			cancel()
			return nil, fmt.Errorf("load directory: %w", ctx.Err())
		}
	}
}

func (d *directory) follow(w jetstream.KeyWatcher, log *slog.Logger) {
	defer close(d.done)
	defer w.Stop()
	for e := range w.Updates() {
		if e != nil {
			d.apply(e, log)
		}
	}
}

func (d *directory) stop() {
	d.cancel()
}

func (d *directory) apply(e jetstream.KeyValueEntry, log *slog.Logger) {
	key := e.Key()
	code, isAgency := record.DirectoryAgencyOf(key)
	switch {
	case isAgency:
		if e.Operation() != jetstream.KeyValuePut {
			d.mu.Lock()
			delete(d.agencies, code)
			d.mu.Unlock()
			return
		}
		var a Agency
		if err := json.Unmarshal(e.Value(), &a); err != nil {
			log.Warn("directory: bad agency entry", "key", key, "err", err)
			return
		}
		a.Version = e.Revision()
		if a.Certificate != "" {
			if certs, err := signing.ParseCerts([]byte(a.Certificate)); err == nil && signing.AgencyOf(certs[0]) == "" {
				d.trust.Bind(a.Code, certs[0])
			}
		}
		d.mu.Lock()
		d.agencies[a.Code] = d.keep(a)
		d.mu.Unlock()
	case key == limitsKey && e.Operation() == jetstream.KeyValuePut:
		var l Limits
		if err := json.Unmarshal(e.Value(), &l); err != nil {
			log.Warn("directory: bad limits", "err", err)
			return
		}
		d.setLimits(l)
	case strings.HasPrefix(key, CRLPrefix):
		d.applyRevocation(e, log)
	case key == BusKey && e.Operation() == jetstream.KeyValuePut:
		d.mu.Lock()
		d.bus = string(e.Value())
		d.mu.Unlock()
	case strings.HasPrefix(key, FedRootPrefix) && e.Operation() == jetstream.KeyValuePut:
		// Roots of the other buses of a federation: only the bus itself
		// writes them, after its operator approved them (see
		// broker/federation), so clients with a trust of their own take
		// them too; without them no remote sender would verify.
		certs, err := signing.ParseCerts(e.Value())
		if err != nil {
			log.Warn("directory: bad federation root entry", "key", key, "err", err)
			return
		}
		d.trust.AddRoot(certs[0])
	case strings.HasPrefix(key, "root.") && d.useRoots && e.Operation() == jetstream.KeyValuePut:
		certs, err := signing.ParseCerts(e.Value())
		if err != nil {
			log.Warn("directory: bad root entry", "key", key, "err", err)
			return
		}
		d.trust.AddRoot(certs[0])
	}
}

func (d *directory) setLimits(l Limits) {
	d.mu.Lock()
	d.limits = l
	d.mu.Unlock()
}

func (d *directory) getLimits() Limits {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.limits
}

func (d *directory) lookup(code string) (Agency, bool) {
	if d.view != nil {
		ctx, cancel := context.WithTimeout(context.Background(), d.view.kv.timeout)
		defer cancel()
		a, ok, err := d.view.entry(ctx, code, false)
		if err != nil {
			d.log.Warn("directory: agency not read", "agency", code, "err", err)
		}
		return a, ok
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	a, ok := d.agencies[code]
	return a, ok
}

// busID is this bus's id in a federation, "" for a bus on its own.
func (d *directory) busID() string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.bus
}

// known reports whether a (possibly non-standard) code is registered.
func (d *directory) known(code string) bool {
	_, ok := d.lookup(code)
	return ok
}

// RegisterAgency adds or replaces an agency in the directory and brings
// the mailbox that serves it up to date: its own (when it holds a
// certificate of its own and no system), its system's, or none (a
// directory-only entry: mail stored for it waits in the record until a
// mailbox serves it). Non-standard codes must be flagged NonStandard.
// What it keeps of the entry it replaces (certificate, bindings, time
// added) is what the bucket holds when it writes: a change made
// meanwhile is read again, never overwritten.
func (c *Client) RegisterAgency(ctx context.Context, a Agency) error {
	return c.UpdateAgency(ctx, a.Code, func(*Agency) (Agency, error) { return a, nil })
}

// ErrEntryChanged: a directory entry kept changing while UpdateAgency
// wrote it.
var ErrEntryChanged = errors.New("directory entry changed meanwhile")

// maxEntryRaces bounds how often UpdateAgency reads an entry again that
// changed under it.
const maxEntryRaces = 8

// UpdateAgency registers, as RegisterAgency does, the entry change makes
// from code's entry as the bucket holds it now (nil when there is none),
// and writes it only over that one: when the entry changed meanwhile,
// change is called again with the new one, so that an entry made from a
// read (a system's binding added to the ones read) never drops a change
// made meanwhile. An error of change is returned as it is; ErrEntryChanged
// when the entry kept changing.
func (c *Client) UpdateAgency(ctx context.Context, code string, change func(prev *Agency) (Agency, error)) error {
	for range maxEntryRaces {
		prev, err := c.currentAgency(ctx, code)
		if err != nil {
			return err
		}
		next, err := change(prev)
		if err != nil {
			return err
		}
		if next.Code != code {
			return fmt.Errorf("register %s: %w: the entry made is %q's", code, ErrInvalidEntry, next.Code)
		}
		if err := c.checkAgency(ctx, &next, prev, nil, nil); err != nil {
			return err
		}
		if prev == nil || prev.Bus != next.Bus || !prev.Withdrawn.IsZero() {
			check, err := c.claims(ctx)
			if err != nil {
				return err
			}
			if err := check(next.Code); err != nil {
				return err
			}
		}
		if err := c.putAgencies(ctx, []Agency{next}, map[string]*Agency{code: prev}, true); !errors.Is(err, ErrEntryChanged) {
			return err
		}
	}
	return fmt.Errorf("register %s: %w", code, ErrEntryChanged)
}

// currentAgency reads code's entry from the bucket (nil when there is none).
func (c *Client) currentAgency(ctx context.Context, code string) (*Agency, error) {
	e, err := c.dir.kv.Get(ctx, record.DirectoryKey(code))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read directory entry of %s: %w", code, err)
	}
	var a Agency
	if err := json.Unmarshal(e.Value(), &a); err != nil {
		return nil, fmt.Errorf("read directory entry of %s: %w", code, err)
	}
	a.Version = e.Revision()
	return &a, nil
}

// checkAgency validates a new or changed entry against the one it
// replaces and the directory: code, certificate, state, system and its
// signed binding, parent (known, or in batch, and no cycle).
// lookup, when set, answers for parents and systems instead of the bus
// (an import reads the directory once).
func (c *Client) checkAgency(ctx context.Context, a, prev *Agency, lookup func(code string) (*Agency, bool), systems map[string]bool) error {
	if a.NonStandard {
		if err := envelope.CheckNonStandardCode(a.Code); err != nil {
			return err
		}
	} else if err := envelope.CheckCode(a.Code); err != nil {
		return fmt.Errorf("%w (register it with NonStandard set to keep it as it is)", err)
	}
	if strings.TrimSpace(a.Name) == "" {
		a.Name = a.Code // an import line needs one (ImportAgencies); a registration may name it later
	}
	if a.Certificate != "" {
		certs, err := signing.ParseCerts([]byte(a.Certificate))
		if err != nil {
			return fmt.Errorf("register %s: %w", a.Code, err)
		}
		if bound := signing.AgencyOf(certs[0]); bound != "" && bound != a.Code {
			return fmt.Errorf("register %s: %w: certificate is bound to %s", a.Code, signing.ErrAgencyMismatch, bound)
		}
		// The audit key registered as an agency's would sign "from" it.
		if what := signing.ServiceOf(certs[0]); what != "" {
			return fmt.Errorf("register %s: %w: %w (%s certificate %s)", a.Code, ErrInvalidEntry, signing.ErrServiceCertificate, what, certs[0].Subject)
		}
	}
	switch a.State {
	case "", StateActive, StateSuspended:
		a.Deleted = time.Time{}
	case StateDeleted:
		if a.Deleted.IsZero() {
			a.Deleted = time.Now().UTC()
		}
	default:
		return fmt.Errorf("register %s: %w: state %q (want active, suspended or deleted)", a.Code, ErrInvalidEntry, a.State)
	}
	if a.State == "" {
		a.State = StateActive
	}
	now := time.Now().UTC()
	if prev != nil {
		a.Added = prev.Added
		if a.Certificate == "" && a.System == prev.System {
			a.Certificate = prev.Certificate // an update of the other fields keeps the agency's key
		}
		if len(a.Bindings) == 0 {
			a.Bindings = prev.Bindings
		}
	}
	if a.Added.IsZero() {
		a.Added = now
	}
	a.Updated = now
	a.Version = 0
	// In a federation an agency is served by the bus it registers on, and
	// a code another bus serves cannot be taken over here.
	if bus := c.Bus(); bus != "" {
		if prev != nil && prev.Bus != "" && prev.Bus != bus && prev.Withdrawn.IsZero() {
			return fmt.Errorf("register %s: %w: served by bus %s", a.Code, ErrServedElsewhere, prev.Bus)
		}
		if a.Bus == "" {
			a.Bus = bus
		}
	}
	if a.System != "" {
		if known, ok := systems[a.System]; ok && !known {
			return fmt.Errorf("register %s: %w %s", a.Code, ErrUnknownSystem, a.System)
		} else if !ok {
			if _, err := c.LookupSystem(ctx, a.System); err != nil {
				return fmt.Errorf("register %s: %w", a.Code, err)
			}
		}
	}
	// The binding to the system (or its end) must be signed by the bus's
	// CA: receivers check a system's signature for the agency against it.
	if want := a.System; want != "" || (prev != nil && prev.System != "") {
		if err := c.checkBinding(a); err != nil {
			return err
		}
	}
	if a.Parent != "" {
		if a.Parent == a.Code {
			return fmt.Errorf("register %s: %w: it is its own parent", a.Code, ErrInvalidEntry)
		}
		// Up the hierarchy: the parent must exist and the chain must not
		// come back to a.Code.
		seen := map[string]bool{a.Code: true}
		for p := a.Parent; p != ""; {
			if seen[p] {
				return fmt.Errorf("register %s: %w: parent %s makes a cycle", a.Code, ErrInvalidEntry, a.Parent)
			}
			seen[p] = true
			var next *Agency
			if lookup != nil {
				next, _ = lookup(p)
			} else {
				got, err := c.currentAgency(ctx, p)
				if err != nil {
					return err
				}
				next = got
			}
			if next == nil {
				return fmt.Errorf("register %s: %w: parent %s is not in the directory", a.Code, ErrInvalidEntry, p)
			}
			p = next.Parent
		}
	}
	return nil
}

// checkBinding checks that a's last signed binding gives it to a.System.
func (c *Client) checkBinding(a *Agency) error {
	var last *signing.Binding
	for _, raw := range a.Bindings {
		b, _, err := c.trust.OpenBinding(raw)
		if err != nil {
			return fmt.Errorf("register %s: %w", a.Code, err)
		}
		if b.Agency != a.Code {
			return fmt.Errorf("register %s: %w: a binding names agency %s", a.Code, ErrInvalidEntry, b.Agency)
		}
		if last == nil || !b.From.Before(last.From) {
			last = &b
		}
	}
	got := ""
	if last != nil {
		got = last.System
	}
	if got != a.System {
		return fmt.Errorf("register %s: %w: its last signed binding gives it to system %q, the entry says %q (sign a binding with the bus's CA)", a.Code, ErrInvalidEntry, got, a.System)
	}
	return nil
}

// endpoint says which mailbox serves an entry: "" none, "=ID" a system's,
// the code itself for its own.
func (a *Agency) endpoint(bus string) string {
	switch {
	case a == nil || a.State == StateDeleted || (a.Bus != "" && a.Bus != bus):
		return ""
	case a.System != "":
		return SystemActor(a.System)
	case a.Certificate != "":
		return a.Code
	}
	return ""
}

// putAgencies writes checked entries and moves their mail: the new
// mailbox serves an agency before its entry says so (a sender reads the
// entry first), the old one stops after. With cas, one entry is written
// only over prev's (else ErrEntryChanged).
func (c *Client) putAgencies(ctx context.Context, list []Agency, prev map[string]*Agency, cas bool) error {
	bus := c.Bus()
	type change struct{ add, remove, catchUp []string }
	systems := map[string]*change{}
	sys := func(ep string) *change {
		id := SystemOfActor(ep)
		if systems[id] == nil {
			systems[id] = &change{}
		}
		return systems[id]
	}
	var own, drop []string
	for i := range list {
		a, p := &list[i], prev[list[i].Code]
		to, from := a.endpoint(bus), p.endpoint(bus)
		if to == from {
			continue
		}
		switch {
		case SystemOfActor(to) != "":
			ch := sys(to)
			ch.add = append(ch.add, a.Code)
			if p != nil {
				ch.catchUp = append(ch.catchUp, a.Code)
			}
		case to != "":
			own = append(own, a.Code)
		}
		switch {
		case SystemOfActor(from) != "":
			ch := sys(from)
			ch.remove = append(ch.remove, a.Code)
		case from != "":
			drop = append(drop, a.Code)
		}
	}
	for id, ch := range systems {
		if len(ch.add) > 0 {
			if err := c.syncSystemMailbox(ctx, id, ch.add, nil, ch.catchUp); err != nil {
				return err
			}
		}
	}
	for _, code := range own {
		if _, err := EnsureMailbox(ctx, c.js, code); err != nil {
			return err
		}
	}
	if err := c.writeEntries(ctx, list, prev, cas); err != nil {
		return err
	}
	for id, ch := range systems {
		if len(ch.remove) > 0 {
			if err := c.syncSystemMailbox(ctx, id, nil, ch.remove, nil); err != nil {
				return err
			}
		}
	}
	for _, code := range drop {
		if err := c.js.DeleteConsumer(ctx, record.Stream, record.MailboxDurable(code)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("close the mailbox of %s: %w", code, err)
		}
	}
	return nil
}

// writeEntries puts the entries in the directory, many at a time.
func (c *Client) writeEntries(ctx context.Context, list []Agency, prev map[string]*Agency, cas bool) error {
	const window = 512
	futures := make([]jetstream.PubAckFuture, 0, window)
	wait := func() error {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("write directory entry %s: %w", f.Msg().Subject, err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		futures = futures[:0]
		return nil
	}
	for i := range list {
		b, err := json.Marshal(list[i])
		if err != nil {
			return err
		}
		if len(list) == 1 {
			// With cas (RegisterAgency): written over the entry it was
			// made from only.
			key := record.DirectoryKey(list[i].Code)
			if !cas {
				_, err = c.dir.kv.Put(ctx, key, b)
			} else {
				// The bus's client and the CLI's (by key) alike: the
				// server checks the key's last revision (0: none).
				var rev uint64
				if p := prev[list[i].Code]; p != nil {
					rev = p.Version
				}
				if k, ok := c.dir.kv.(*directKV); ok && k.readOnly != nil {
					// An agency's credentials: said at once, as Put does,
					// not by a publish the server drops.
					return fmt.Errorf("register %s in the directory: %w", list[i].Code, k.readOnly)
				}
				_, err = c.js.Publish(ctx, c.dir.direct.subject(key), b,
					jetstream.WithExpectStream(record.KVStream(record.DirectoryBucket)), jetstream.WithExpectLastSequencePerSubject(rev))
				if bucket.Conflict(err) {
					err = ErrEntryChanged
				}
			}
			if err != nil {
				return fmt.Errorf("register %s in the directory: %w", list[i].Code, err)
			}
			break
		}
		f, err := c.js.PublishAsync(c.dir.direct.subject(record.DirectoryKey(list[i].Code)), b)
		if err != nil {
			return fmt.Errorf("register %s in the directory: %w", list[i].Code, err)
		}
		if futures = append(futures, f); len(futures) == window {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	if err := wait(); err != nil {
		return err
	}
	c.dir.mu.Lock()
	for _, a := range list {
		if c.dir.view == nil {
			c.dir.agencies[a.Code] = c.dir.keep(a)
		} else {
			// Read again when asked: the client sees what it wrote.
			delete(c.dir.agencies, a.Code)
			delete(c.dir.view.fetched, a.Code)
		}
		if a.Certificate == "" {
			continue
		}
		if certs, err := signing.ParseCerts([]byte(a.Certificate)); err == nil && signing.AgencyOf(certs[0]) == "" {
			c.trust.Bind(a.Code, certs[0])
		}
	}
	c.dir.mu.Unlock()
	return nil
}

// bindingsCopy is an agency's bindings as read at a directory version.
type bindingsCopy struct {
	version uint64
	list    []string
}

// keep returns what the bus's client keeps of an entry: all but its
// system bindings. A binding is a signed JWS, most of an entry's bytes;
// 100,000 of them would cost the bus hundreds of MiB while only the
// bindings of agencies whose mail is being checked are needed: bindings
// reads those by key. An agency's client keeps entries whole (a few).
// Under d.mu.
func (d *directory) keep(a Agency) Agency {
	if d.view != nil || len(a.Bindings) == 0 {
		return a
	}
	a.Bindings, a.bound = nil, true
	return a
}

// maxBindingsRead bounds the bindings the bus's client keeps.
const maxBindingsRead = 4096

// bindings returns the signed system bindings of agency (for the trust).
// The bus's client reads them from the bucket when its copy of the entry
// is newer than the bindings it read last (the history only grows, so a
// read that is newer still is as good).
func (d *directory) bindings(agency string) []string {
	a, ok := d.lookup(agency)
	if !ok || !a.bound {
		return a.Bindings
	}
	d.mu.RLock()
	got, read := d.bindingsRead[agency]
	d.mu.RUnlock()
	if read && got.version >= a.Version && a.Version != 0 {
		return got.list
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := d.kv.Get(ctx, record.DirectoryKey(agency))
	var full Agency
	if err == nil {
		err = json.Unmarshal(e.Value(), &full)
	}
	if err != nil {
		// Bindings read before are older than the entry, not wrong: a
		// signature they do not cover fails and is retried.
		d.log.Warn("directory: bindings not read", "agency", agency, "err", err)
		return got.list
	}
	d.mu.Lock()
	d.bindingsRead[agency] = bindingsCopy{version: e.Revision(), list: full.Bindings}
	for code := range d.bindingsRead {
		if len(d.bindingsRead) <= maxBindingsRead {
			break
		}
		if code != agency {
			delete(d.bindingsRead, code)
		}
	}
	d.mu.Unlock()
	return full.Bindings
}

// PublishRoot publishes a CA certificate that every client of the bus
// trusts when it was not given a Trust of its own.
func (c *Client) PublishRoot(ctx context.Context, root *x509.Certificate) error {
	if _, err := c.dir.kv.Put(ctx, "root."+envelope.Fingerprint(root), signing.EncodeCerts(root)); err != nil {
		return fmt.Errorf("publish root certificate: %w", err)
	}
	return nil
}

// Directory keys of a federation (see broker/federation).
const (
	// BusKey holds this bus's id.
	BusKey = "bus"
	// FedRootPrefix starts the keys of the other buses' approved roots.
	FedRootPrefix = "fedroot."
)

// Bus returns this bus's id in a federation, "" for a bus on its own.
func (c *Client) Bus() string { return c.dir.busID() }

// Agencies lists the directory, sorted by code. An agency's client reads
// the whole directory for it, page by page. The bus's own client lists
// its copy, which leaves out the system bindings (LookupAgency and
// DirectoryChanges return entries whole).
func (c *Client) Agencies(ctx context.Context) ([]Agency, error) {
	if c.dir.view != nil {
		list, err := c.dir.view.list(ctx)
		return list, c.explain(err)
	}
	c.dir.mu.RLock()
	out := make([]Agency, 0, len(c.dir.agencies))
	for _, a := range c.dir.agencies {
		out = append(out, a)
	}
	c.dir.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out, nil
}

// LookupAgency returns the directory entry of code.
func (c *Client) LookupAgency(ctx context.Context, code string) (*Agency, error) {
	if v := c.dir.view; v != nil {
		// Not cached: asked of the bus every time, so that an agency
		// registered a moment ago is found.
		a, ok, err := v.entry(ctx, code, true)
		if err != nil {
			return nil, c.explain(err)
		}
		if !ok {
			return nil, fmt.Errorf("%w %s: not registered on this bus (docaxis agency add %s)", ErrUnknownAgency, code, code)
		}
		return &a, nil
	}
	if a, ok := c.dir.lookup(code); ok {
		if a.bound {
			a.Bindings, a.bound = c.dir.bindings(code), false
		}
		return &a, nil
	}
	// The watcher may lag a registration made a moment ago elsewhere.
	return c.readAgency(ctx, code)
}

// readAgency reads code's entry from the bucket itself, with its version,
// for decisions that must not act on a cached entry (revocation, a system
// acting for an agency moved a moment ago).
func (c *Client) readAgency(ctx context.Context, code string) (*Agency, error) {
	a, err := c.currentAgency(ctx, code)
	if err == nil && a == nil {
		return nil, fmt.Errorf("%w %s: not registered on this bus (docaxis agency add %s)", ErrUnknownAgency, code, code)
	}
	return a, err
}
