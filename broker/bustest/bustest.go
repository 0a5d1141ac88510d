// Package bustest starts a real docaxis bus for tests: an embedded NATS
// server with JetStream in a temporary directory, the bus service (streams,
// tracker) and a development CA, and registers agencies on it.
package bustest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bus is a running test bus.
type Bus struct {
	t        testing.TB
	Dir      string
	Listen   string
	Server   *bus.Server
	Service  *bus.Service
	Keystore *signing.Keystore
	CA       *signing.CA
	Trust    *signing.Trust
	Config   bus.ServerConfig

	// Auth, with WithAuth, is the NATS authority: the bus runs with
	// per-agency credentials and permissions as `docaxis serve` does.
	Auth *auth.Authority

	mu           sync.Mutex
	ids          map[string]*signing.Identity
	nc           *nats.Conn
	extraOptions func(b *Bus) []nats.Option
	noFiles      bool
}

// WithoutFiles runs the bus without its attachment service, for tests
// that run their own.
func WithoutFiles() Option {
	return func(b *Bus) { b.noFiles = true }
}

// WithAuth runs the bus in operator mode with per-agency credentials.
func WithAuth() Option {
	return func(b *Bus) {
		a, err := auth.Open(filepath.Join(b.Dir, "home", "nats"))
		if err != nil {
			b.t.Fatal(err)
		}
		b.Auth = a
		prev := b.Config.Configure
		b.Config.Configure = func(o *server.Options) error {
			if prev != nil {
				if err := prev(o); err != nil {
					return err
				}
			}
			return a.Configure(o)
		}
	}
}

// Option adjusts the bus before it starts.
type Option func(*Bus)

// WithServerConfig lets a test adjust the embedded server (auth, TLS).
func WithServerConfig(fn func(*bus.ServerConfig)) Option {
	return func(b *Bus) { fn(&b.Config) }
}

// Logger for bus services in tests: quiet unless DOCAXIS_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("DOCAXIS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Start starts a bus in t.TempDir() and stops it at cleanup, waiting for
// the server to shut down before the directory is removed.
func Start(t testing.TB, opts ...Option) *Bus {
	t.Helper()
	dir := t.TempDir()
	ks, err := signing.OpenKeystore(filepath.Join(dir, "home"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ks.CA()
	if err != nil {
		t.Fatal(err)
	}
	// The port is kept across restarts: one below the ephemeral range, which
	// no outgoing connection takes while the bus is down.
	b := &Bus{t: t, Dir: dir, Keystore: ks, CA: ca, Trust: signing.NewTrust(ca.Cert), ids: map[string]*signing.Identity{},
		Config: bus.ServerConfig{Dir: filepath.Join(dir, "data"), Listen: fmt.Sprintf("127.0.0.1:%d", freePort(t))}}
	for _, o := range opts {
		o(b)
	}
	b.start()
	t.Cleanup(b.Stop)
	return b
}

func (b *Bus) start() {
	b.t.Helper()
	srv, err := bus.StartServer(b.Config)
	if err != nil {
		b.t.Fatal(err)
	}
	b.Server = srv
	// Keep the port across restarts so clients reconnect.
	b.Config.Listen = srv.NATS().Addr().String()
	b.Listen = b.Config.Listen
	nc, err := nats.Connect(srv.ClientURL(), b.AdminOptions()...)
	if err != nil {
		b.t.Fatal(err)
	}
	b.nc = nc
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// As docaxis serve runs it: events nobody watches are not published.
	svc, err := bus.StartService(ctx, nc, bus.ServiceConfig{Trust: b.Trust, Logger: Logger(), NoFiles: b.noFiles, Server: srv})
	if err != nil {
		b.t.Fatal(err)
	}
	b.Service = svc
}

// WithAdminOptions adds NATS options to the bus's own connection (e.g.
// TLS settings).
func WithAdminOptions(fn func(b *Bus) []nats.Option) Option {
	return func(b *Bus) { b.extraOptions = fn }
}

// AdminOptions are the NATS options of the bus's own connection.
func (b *Bus) AdminOptions() []nats.Option {
	var opts []nats.Option
	if b.extraOptions != nil {
		opts = append(opts, b.extraOptions(b)...)
	}
	if b.Auth == nil {
		return opts
	}
	creds, err := b.Auth.AdminCreds()
	if err != nil {
		b.t.Fatal(err)
	}
	return append(opts, nats.UserCredentials(creds))
}

// AgencyCreds issues NATS credentials for code (with WithAuth).
func (b *Bus) AgencyCreds(code string) string {
	b.t.Helper()
	path := filepath.Join(b.Dir, "home", "agencies", code, "nats.creds")
	if err := b.Auth.AgencyCreds(code, path); err != nil {
		b.t.Fatal(err)
	}
	return path
}

// Connect opens a connection of the bus's own (AdminOptions), closed when
// the test ends, and its JetStream context.
func (b *Bus) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return b.connect(t, b.AdminOptions())
}

// AgencyConnect opens a plain nats.go connection with code's credentials
// (WithAuth), as an agency's own program opens it, closed when the test
// ends, and its JetStream context; opts are added (an error handler).
func (b *Bus) AgencyConnect(t testing.TB, code string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	return b.connect(t, append([]nats.Option{nats.UserCredentials(b.AgencyCreds(code)), nats.CustomInboxPrefix(auth.InboxPrefix(code))}, opts...))
}

// connect opens a connection with opts, closed when the test ends.
func (b *Bus) connect(t testing.TB, opts []nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(b.URL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// StartProcess starts a second process of the bus's services on a
// connection of its own, as a second `docaxis serve` on a cluster runs:
// stop stops it (once, however often it is called); so does the test's
// end.
func (b *Bus) StartProcess(t testing.TB) (svc *bus.Service, stop func()) {
	t.Helper()
	nc, _ := b.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	svc, err := bus.StartService(ctx, nc, bus.ServiceConfig{Trust: b.Trust, Logger: Logger()})
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(svc.Stop) }
	t.Cleanup(stop)
	return svc, stop
}

// URL is the client URL of the bus.
func (b *Bus) URL() string { return "nats://" + b.Listen }

// Stop stops the service and the server; safe to call twice.
func (b *Bus) Stop() {
	if b.Service != nil {
		b.Service.Stop()
		b.Service = nil
	}
	if b.nc != nil {
		b.nc.Close()
		b.nc = nil
	}
	if b.Server != nil {
		b.Server.Shutdown()
		b.Server = nil
	}
}

// Restart stops the bus and starts it again on the same directory and port.
func (b *Bus) Restart() {
	b.t.Helper()
	b.Stop()
	b.start()
}

// AddAgency issues an identity for code (ECDSA unless kt says otherwise)
// and registers it on the bus.
func (b *Bus) AddAgency(code, name string, kt ...signing.KeyType) *signing.Identity {
	b.t.Helper()
	o := signing.IssueOptions{}
	if len(kt) > 0 {
		o.KeyType = kt[0]
	}
	id, err := b.CA.Issue(code, name, o)
	if err != nil {
		b.t.Fatal(err)
	}
	b.Register(id, false)
	return id
}

// Register publishes id in the directory.
func (b *Bus) Register(id *signing.Identity, nonStandard bool) {
	b.t.Helper()
	if err := b.Keystore.Save(id); err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := b.Service.Client.RegisterAgency(ctx, broker.Agency{Code: id.Agency, Name: id.Agency, NonStandard: nonStandard, Certificate: string(signing.EncodeCerts(id.Chain...))})
	if err != nil {
		b.t.Fatal(err)
	}
	b.mu.Lock()
	b.ids[id.Agency] = id
	b.mu.Unlock()
}

// Identity returns a registered agency's identity.
func (b *Bus) Identity(code string) *signing.Identity {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ids[code]
}

// Client connects a client holding the identities of codes (all
// registered agencies when none given); it is closed at cleanup. With
// WithAuth and exactly one code, it connects with that agency's
// credentials; otherwise with the bus's own.
func (b *Bus) Client(codes ...string) *broker.Client {
	b.t.Helper()
	var ids []*signing.Identity
	b.mu.Lock()
	if len(codes) == 0 {
		for _, id := range b.ids {
			ids = append(ids, id)
		}
	}
	for _, c := range codes {
		if id, ok := b.ids[c]; ok {
			ids = append(ids, id)
		}
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := []broker.Option{broker.WithIdentity(ids...), broker.WithTrust(b.Trust), broker.WithLogger(Logger())}
	if b.Auth != nil {
		if len(codes) == 1 {
			opts = append(opts, broker.WithAgencyCredentials(b.AgencyCreds(codes[0])))
		} else {
			opts = append(opts, broker.WithNATSOptions(b.AdminOptions()...))
		}
	}
	c, err := broker.Connect(ctx, b.URL(), opts...)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(c.Close)
	return c
}
