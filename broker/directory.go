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
	// State is StateActive (also ""), StateSuspended or StateDeleted; a
	// deleted entry stays for the record with the time in Deleted.
	State   string    `json:"state,omitempty"`
	Deleted time.Time `json:"deleted,omitzero"`
	Updated time.Time `json:"updated,omitzero"`
	// Version is the directory version of this entry's last change (not
	// stored: the bucket's revision, set when read).
	Version uint64 `json:"version,omitempty"`
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
	view     *agencyView // an agency's client: what is read by key, and when
	trust    *signing.Trust
	useRoots bool
	log      *slog.Logger
	mu       sync.RWMutex
	agencies map[string]Agency // all of them for the bus's client; those read lately for an agency's
	limits   Limits
	bus      string // this bus's id in a federation (key "bus"), "" alone
	cancel   context.CancelFunc
	done     chan struct{}
}

func openDirectory(ctx context.Context, js jetstream.JetStream, trust *signing.Trust, useRoots bool, log *slog.Logger) (*directory, error) {
	kv, err := js.KeyValue(ctx, DirectoryBucket)
	if err != nil {
		return nil, fmt.Errorf("open directory bucket %s (is 'docaxis serve' running on this bus?): %w", DirectoryBucket, err)
	}
	d := &directory{kv: kv, trust: trust, useRoots: useRoots, log: log, agencies: map[string]Agency{}, limits: DefaultLimits, done: make(chan struct{})}
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
	switch {
	case strings.HasPrefix(key, "agency."):
		if e.Operation() != jetstream.KeyValuePut {
			d.mu.Lock()
			delete(d.agencies, envelope.CodeFromToken(strings.TrimPrefix(key, "agency.")))
			d.mu.Unlock()
			return
		}
		var a Agency
		if err := json.Unmarshal(e.Value(), &a); err != nil {
			log.Warn("directory: bad agency entry", "key", key, "err", err)
			return
		}
		if certs, err := signing.ParseCerts([]byte(a.Certificate)); err == nil && signing.AgencyOf(certs[0]) == "" {
			d.trust.Bind(a.Code, certs[0])
		}
		d.mu.Lock()
		d.agencies[a.Code] = a
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

// RegisterAgency adds or replaces an agency in the directory and creates
// its mailbox. Non-standard codes must be flagged NonStandard explicitly.
func (c *Client) RegisterAgency(ctx context.Context, a Agency) error {
	if a.NonStandard {
		if err := envelope.CheckNonStandardCode(a.Code); err != nil {
			return err
		}
	} else if err := envelope.CheckCode(a.Code); err != nil {
		return fmt.Errorf("%w (register it with NonStandard set to keep it as it is)", err)
	}
	certs, err := signing.ParseCerts([]byte(a.Certificate))
	if err != nil {
		return fmt.Errorf("register %s: %w", a.Code, err)
	}
	if bound := signing.AgencyOf(certs[0]); bound != "" && bound != a.Code {
		return fmt.Errorf("register %s: %w: certificate is bound to %s", a.Code, signing.ErrAgencyMismatch, bound)
	}
	if a.Added.IsZero() {
		a.Added = time.Now().UTC()
	}
	// In a federation an agency is served by the bus it registers on, and
	// a code another bus serves cannot be taken over here.
	if bus := c.Bus(); bus != "" {
		if prev, ok := c.dir.lookup(a.Code); ok && prev.Bus != "" && prev.Bus != bus && prev.Withdrawn.IsZero() {
			return fmt.Errorf("register %s: %w: served by bus %s", a.Code, ErrServedElsewhere, prev.Bus)
		}
		if a.Bus == "" {
			a.Bus = bus
		}
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := c.dir.kv.Put(ctx, directoryKey(a.Code), b); err != nil {
		return fmt.Errorf("register %s in the directory: %w", a.Code, err)
	}
	if _, err := EnsureMailbox(ctx, c.js, a.Code); err != nil {
		return err
	}
	c.dir.mu.Lock()
	c.dir.agencies[a.Code] = a
	c.dir.mu.Unlock()
	if signing.AgencyOf(certs[0]) == "" {
		c.trust.Bind(a.Code, certs[0])
	}
	return nil
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
// the whole directory for it, page by page.
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
		return &a, nil
	}
	// The watcher may lag a registration made a moment ago elsewhere.
	return c.readAgency(ctx, code)
}

// readAgency reads code's entry from the bucket itself, for decisions
// that must not act on a cached certificate (revocation).
func (c *Client) readAgency(ctx context.Context, code string) (*Agency, error) {
	if c.dir.view != nil {
		return c.LookupAgency(ctx, code)
	}
	e, err := c.dir.kv.Get(ctx, directoryKey(code))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w %s: not registered on this bus (docaxis agency add %s)", ErrUnknownAgency, code, code)
	}
	if err != nil {
		return nil, fmt.Errorf("look up agency %s: %w", code, err)
	}
	var a Agency
	if err := json.Unmarshal(e.Value(), &a); err != nil {
		return nil, fmt.Errorf("look up agency %s: %w", code, err)
	}
	return &a, nil
}
