package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Client is a DMS's connection to the bus: it sends envelopes, reads
// mailboxes, reports statuses and reads tracking state. It is safe for
// concurrent use.
type Client struct {
	tsGate  timestampingGate
	nc      *nats.Conn
	js      jetstream.JetStream
	ownConn bool
	opts    options

	trust    *signing.Trust
	verifier *signing.Verifier
	store    storage.Store

	track    jetstream.KeyValue // the bus's own client only
	ids      jetstream.KeyValue // AXIS_IDS, opened on first use
	idsMu    sync.Mutex
	refs     jetstream.KeyValue // AXIS_FILEREFS, the bus's own client, opened on first use
	refsMu   sync.Mutex
	received keyStore // read and written by key: an agency may not list it
	dir      *directory
	rate     rateLimiter
	idMu     sync.Mutex // guards opts.identities, filled on demand
}

// Option configures a Client.
type Option func(*options) error

type options struct {
	identities map[string]*signing.Identity
	keystore   *signing.Keystore
	trust      *signing.Trust
	store      storage.Store
	natsOpts   []nats.Option
	logger     *slog.Logger
	timeout    time.Duration
	agency     string // set when connected with an agency's credentials
	storeFn    func(nc *nats.Conn, agency string) (storage.Store, error)
	violation  *atomic.Pointer[violation]
	dirRefresh time.Duration
	dirByKey   bool

	// nil: DefaultRetryPatience (retry.go)
	retryPatience *time.Duration
}

// violation is the last permission violation the server reported: NATS
// refuses a denied request silently to the requester, who only sees a
// timeout, so the client names the refusal itself.
type violation struct {
	at  time.Time
	err error
}

// explain turns a timeout that followed a permission violation into an
// error that says so.
func (c *Client) explain(err error) error {
	if err == nil || !isTimeout(err) {
		return err
	}
	if v := c.opts.violation.Load(); v != nil && time.Since(v.at) < c.opts.timeout+5*time.Second {
		return fmt.Errorf("%w: %v (credentials of %s)", ErrPermission, v.err, orBus(c.opts.agency))
	}
	return err
}

func orBus(agency string) string {
	if agency == "" {
		return "the bus"
	}
	return "agency " + agency
}

// WithIdentity gives the client agencies' signing identities.
func WithIdentity(ids ...*signing.Identity) Option {
	return func(o *options) error {
		for _, id := range ids {
			o.identities[id.Agency] = id
		}
		return nil
	}
}

// WithKeystore lets the client load identities from a keystore on demand.
func WithKeystore(ks *signing.Keystore) Option {
	return func(o *options) error { o.keystore = ks; return nil }
}

// WithTrust sets the roots and bindings used to verify envelopes. Without
// it the client trusts the roots published in the bus directory.
func WithTrust(t *signing.Trust) Option {
	return func(o *options) error { o.trust = t; return nil }
}

// WithStore sets the attachment store. Without it the client uses the
// embedded store on the same NATS system.
func WithStore(s storage.Store) Option {
	return func(o *options) error { o.store = s; return nil }
}

// WithStoreFunc builds the attachment store on the client's connection
// (e.g. the bus's attachment service for an agency client).
func WithStoreFunc(fn func(nc *nats.Conn, agency string) (storage.Store, error)) Option {
	return func(o *options) error { o.storeFn = fn; return nil }
}

// WithNATSOptions passes options to nats.Connect.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(o *options) error { o.natsOpts = append(o.natsOpts, opts...); return nil }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error { o.logger = l; return nil }
}

// WithTimeout bounds each JetStream request (default 10s).
func WithTimeout(d time.Duration) Option {
	return func(o *options) error { o.timeout = d; return nil }
}

// WithDirectoryRefresh sets how long a client connected with an agency's
// credentials keeps what it read from the directory (default
// DefaultDirectoryRefresh): entries, limits and roots changed on the bus
// are seen at most this much later. Revocations are read again before an
// envelope is verified whenever needed, whatever this period.
func WithDirectoryRefresh(d time.Duration) Option {
	return func(o *options) error { o.dirRefresh = d; return nil }
}

// WithDirectoryByKey makes a client with the bus's own credentials read
// the directory by key when it needs an entry, as an agency's client does,
// instead of loading and following all of it. Meant for short-lived
// operator tools (the CLI) on a national directory, where loading 100,000
// entries would cost seconds for each command; the bus itself follows the
// directory. The client still writes it.
func WithDirectoryByKey() Option {
	return func(o *options) error { o.dirByKey = true; return nil }
}

// WithAgencyCredentials connects with the NATS credentials `docaxis agency
// creds` issued to an agency: the client then works within that agency's
// permissions (its own reply inbox, its own tracking keys).
func WithAgencyCredentials(path string) Option {
	return func(o *options) error {
		if id, err := auth.SystemOfCreds(path); err == nil && id != "" {
			// A document system: it acts as SystemActor(id) towards the
			// bus's services and signs for the agencies it serves.
			o.agency = SystemActor(id)
			o.natsOpts = append(o.natsOpts, nats.UserCredentials(path), nats.CustomInboxPrefix(auth.InboxPrefix(o.agency)))
			return nil
		}
		agency, err := auth.AgencyOfCreds(path)
		if err != nil {
			return err
		}
		o.agency = agency
		o.natsOpts = append(o.natsOpts, nats.UserCredentials(path), nats.CustomInboxPrefix(auth.InboxPrefix(agency)))
		return nil
	}
}

// Agency returns the agency whose credentials the client connected with,
// or "" for the bus's own credentials.
func (c *Client) Agency() string { return c.opts.agency }

// Connect dials url and returns a client.
func Connect(ctx context.Context, url string, opts ...Option) (*Client, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	natsOpts := append([]nats.Option{nats.Name("docaxis client"), nats.MaxReconnects(-1),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				o.violation.Store(&violation{at: time.Now(), err: err})
			}
			// Watchers re-create their consumers after a server restart;
			// what they report meanwhile is for debugging only.
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			o.logger.Debug("nats async error", "subject", subject, "err", err)
		})}, o.natsOpts...)
	nc, err := nats.Connect(url, natsOpts...)
	if err != nil {
		return nil, fmt.Errorf("connect to bus at %s: %w", url, err)
	}
	c, err := newClient(ctx, nc, o)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.ownConn = true
	return c, nil
}

// New returns a client on an existing connection; Close leaves nc open.
func New(ctx context.Context, nc *nats.Conn, opts ...Option) (*Client, error) {
	o, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	return newClient(ctx, nc, o)
}

func buildOptions(opts []Option) (options, error) {
	o := options{identities: map[string]*signing.Identity{}, logger: slog.Default(), timeout: 10 * time.Second, violation: &atomic.Pointer[violation]{}}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	return o, nil
}

func newClient(ctx context.Context, nc *nats.Conn, o options) (*Client, error) {
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(o.timeout))
	if err != nil {
		return nil, fmt.Errorf("open JetStream: %w", err)
	}
	c := &Client{nc: nc, js: js, opts: o}
	if o.agency != "" && SystemOfActor(o.agency) == "" {
		// An agency has no access to the tracking bucket: it reads its
		// tracking through the bus's tracking service, whose answer also
		// says that the bus is set up.
		if err := c.waitTrackService(ctx, 5*time.Second); err != nil {
			return nil, err
		}
	}
	// A bus that has just started accepts connections a moment before its
	// streams and buckets exist: wait a little for them.
	for wait := time.Now().Add(5 * time.Second); o.agency == ""; {
		// Opening asks the bucket's leader, which a failover leaves
		// silent for a moment: ask again rather than wait out ctx.
		c.track, err = retry(ctx, c, func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, record.TrackBucket) })
		if err == nil || !errors.Is(err, jetstream.ErrBucketNotFound) || time.Now().After(wait) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open tracking bucket %s (is 'docaxis serve' running on this bus?): %w", record.TrackBucket, c.explain(err))
	}
	// Received markers are read and written by key, by the bus's client
	// as by an agency's (whose credentials reach only its own keys).
	c.received = &directKV{nc: nc, js: js, bucket: record.ReceivedBucket, timeout: o.timeout}
	if id := SystemOfActor(o.agency); id != "" {
		c.received = &sysKV{c: c, id: id}
	}
	c.trust = o.trust
	if c.trust == nil {
		c.trust = signing.NewTrust()
	}
	switch {
	case o.agency != "":
		c.dir, err = openAgencyDirectory(ctx, nc, js, c.trust, o.trust == nil, o.logger, o.timeout, o.dirRefresh, nil)
	case o.dirByKey:
		var kv jetstream.KeyValue
		if kv, err = retry(ctx, c, func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, record.DirectoryBucket) }); err != nil {
			return nil, fmt.Errorf("open directory bucket %s (is 'docaxis serve' running on this bus?): %w", record.DirectoryBucket, c.explain(err))
		}
		c.dir, err = openAgencyDirectory(ctx, nc, js, c.trust, o.trust == nil, o.logger, o.timeout, o.dirRefresh, kv)
	default:
		c.dir, err = openDirectory(ctx, js, c.trust, o.trust == nil, o.logger)
	}
	if err != nil {
		return nil, c.explain(err)
	}
	c.verifier = &signing.Verifier{Trust: c.trust, Validate: []envelope.ValidateOption{envelope.AllowCodes(c.dir.known)}, Bindings: c.dir.bindings}
	switch {
	case o.store != nil:
		c.store = o.store
	case o.storeFn != nil:
		if c.store, err = o.storeFn(nc, o.agency); err != nil {
			return nil, err
		}
	case o.agency != "":
		// An agency may not touch the store directly: it goes through the
		// bus's attachment service, which checks who may read what.
		c.store = filesvc.NewStore(nc, o.agency)
	default:
		c.store, err = retry(ctx, c, func(ctx context.Context) (storage.Store, error) {
			s, err := storage.NewJetStream(ctx, js, storage.JetStreamConfig{})
			if err != nil && ctx.Err() != nil {
				err = fmt.Errorf("%w: %w", err, ctx.Err()) // the attempt's deadline passed: ask again
			}
			return s, err
		})
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Close stops the client's watchers and, if Connect opened it, the
// connection (after flushing what is pending).
func (c *Client) Close() {
	c.dir.stop()
	if c.ownConn {
		_ = c.nc.Drain()
	}
}

// Conn returns the NATS connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// JetStream returns the JetStream context.
func (c *Client) JetStream() jetstream.JetStream { return c.js }

// Store returns the attachment store.
func (c *Client) Store() storage.Store { return c.store }

// Trust returns the trust the client verifies with.
func (c *Client) Trust() *signing.Trust { return c.trust }

// Verifier returns the client's verifier.
func (c *Client) Verifier() *signing.Verifier { return c.verifier }

// Identity returns the signing identity of agency.
func (c *Client) Identity(agency string) (*signing.Identity, error) {
	c.idMu.Lock()
	defer c.idMu.Unlock()
	if id, ok := c.opts.identities[agency]; ok {
		return id, nil
	}
	if sys := SystemOfActor(c.opts.agency); sys != "" && agency != c.opts.agency {
		// A system signs for the agencies the directory gives it.
		c.idMu.Unlock()
		a, err := c.LookupAgency(context.Background(), agency)
		c.idMu.Lock()
		if err != nil {
			return nil, err
		}
		if a.System != sys {
			return nil, fmt.Errorf("%w: system %s, agency %s (served by %q)", ErrNotServed, sys, agency, a.System)
		}
		own, ok := c.opts.identities[c.opts.agency]
		if !ok {
			if c.opts.keystore == nil {
				return nil, fmt.Errorf("%w system %s: the client holds no key for it", signing.ErrNoIdentity, sys)
			}
			if own, err = c.opts.keystore.SystemIdentity(sys); err != nil {
				return nil, err
			}
			c.opts.identities[c.opts.agency] = own
		}
		return own.ForAgency(agency), nil
	}
	if c.opts.keystore == nil {
		return nil, fmt.Errorf("%w %s: the client holds no key for it", signing.ErrNoIdentity, agency)
	}
	id, err := c.opts.keystore.Identity(agency)
	if errors.Is(err, signing.ErrNoIdentity) && c.opts.agency == "" {
		// The bus's own client (the HTTP and compatibility APIs) signs for
		// an agency served by a system with that system's key, when its
		// home holds it.
		c.idMu.Unlock()
		a, lerr := c.LookupAgency(context.Background(), agency)
		c.idMu.Lock()
		if lerr == nil && a.System != "" {
			if sid, serr := c.opts.keystore.SystemIdentity(a.System); serr == nil {
				return sid.ForAgency(agency), nil
			}
		}
	}
	if err != nil {
		return nil, err
	}
	c.opts.identities[agency] = id
	return id, nil
}

func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)
}

// recordedAt is the time an envelope from agency from was recorded, for
// judging its signature: when this bus stored it, or, for a copy from
// another bus of a federation, when the sender's bus did (a link down for
// days must not make a copy look backdated). Only the bus's federation
// service can store a copy from an agency of another bus (agencies publish
// under their own code), and it sets the header from the verified trace.
func (c *Client) recordedAt(h nats.Header, from string, stored time.Time) time.Time {
	v := h.Get(record.HeaderRecorded)
	bus := c.dir.busID()
	if v == "" || bus == "" {
		return stored
	}
	a, _ := c.dir.lookup(from)
	return record.JudgedAt(v, stored, bus, a.Bus)
}

// servedElsewhere tells an agency served by another bus of a federation.
func (c *Client) servedElsewhere(agency string) bool {
	bus := c.Bus()
	if bus == "" {
		return false
	}
	a, ok := c.dir.lookup(agency)
	return ok && a.Bus != "" && a.Bus != bus
}
