package bustest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats-server/v2/server"
)

// FedBus is a test bus in a federation: its own directory, store, CA and
// NATS authority, JetStream in its own domain, and the federation service.
type FedBus struct {
	*Bus
	ID       string
	National string
	Fed      *federation.Service

	mu       sync.Mutex
	leafPort int
	opts     *server.Options
	t        testing.TB
	// fedConfig, when set, adjusts the federation service's configuration.
	fedConfig func(*federation.Config)
}

// StartNationalWith is StartNational with the federation service's
// configuration adjusted by fed (limits, waits).
func StartNationalWith(t testing.TB, id string, fed func(*federation.Config), opts ...Option) *FedBus {
	t.Helper()
	f := &FedBus{ID: id, National: id, t: t, fedConfig: fed, leafPort: freePort(t)}
	opts = append([]Option{WithAuth(), f.configure(func(_ *Bus, o *federation.ServerOptions) { o.LeafListen = f.leafListen() })}, opts...)
	f.Bus = Start(t, opts...)
	f.rememberLeafPort()
	f.startFed()
	t.Cleanup(f.stopFed)
	return f
}

// StartMemberWith is StartMember with the federation service's
// configuration adjusted by fed.
func StartMemberWith(t testing.TB, id string, national *FedBus, fed func(*federation.Config), opts ...Option) *FedBus {
	t.Helper()
	f := &FedBus{ID: id, National: national.ID, t: t, fedConfig: fed}
	return f.startMember(national, opts...)
}

// UplinkCreds is the path of a member's leaf credentials, as the national
// issued them.
func (f *FedBus) UplinkCreds() string {
	return filepath.Join(f.Dir, "home", "federation", "uplink.creds")
}

// StartNational starts a national bus listening for leaf connections on
// loopback (the same port across restarts).
func StartNational(t testing.TB, id string, opts ...Option) *FedBus {
	t.Helper()
	return StartNationalWith(t, id, nil, opts...)
}

// StartMember starts a member bus linked to national: the national lists
// it with its CA and issues its leaf credentials, as `docaxis federation
// member add` does.
func StartMember(t testing.TB, id string, national *FedBus, opts ...Option) *FedBus {
	t.Helper()
	f := &FedBus{ID: id, National: national.ID, t: t}
	return f.startMember(national, opts...)
}

func (f *FedBus) startMember(national *FedBus, opts ...Option) *FedBus {
	t, id := f.t, f.ID
	t.Helper()
	var creds string
	opts = append([]Option{WithAuth(), func(b *Bus) {
		creds = filepath.Join(b.Dir, "home", "federation", "uplink.creds")
		if err := national.Auth.LeafCreds(national.ID, id, creds); err != nil {
			t.Fatal(err)
		}
	}, f.configure(func(b *Bus, o *federation.ServerOptions) {
		o.Uplink = national.LeafURL()
		o.UplinkCreds = creds
		o.LocalAccount = b.Auth.AccountPublicKey()
		o.ReconnectInterval = 100 * time.Millisecond
	})}, opts...)
	f.Bus = Start(t, opts...)
	// Listed with its CA once every option applied (WithCA).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := federation.RegisterBus(ctx, national.Service.Client, id, f.CA.Cert, false); err != nil {
		t.Fatal(err)
	}
	f.startFed()
	t.Cleanup(f.stopFed)
	return f
}

// WithCA runs the bus with ca as its CA instead of the development CA of
// its home: a CA in use for a while, say.
func WithCA(ca *signing.CA) Option {
	return func(b *Bus) {
		b.CA = ca
		b.Trust = signing.NewTrust(ca.Cert)
	}
}

// configure adds the federation's server options to the bus's server.
func (f *FedBus) configure(set func(b *Bus, o *federation.ServerOptions)) Option {
	return func(b *Bus) {
		prev := b.Config.Configure
		b.Config.Name = federation.ServerName(f.ID)
		b.Config.Configure = func(so *server.Options) error {
			if prev != nil {
				if err := prev(so); err != nil {
					return err
				}
			}
			o := federation.ServerOptions{BusID: f.ID}
			set(b, &o)
			if err := o.Configure(so); err != nil {
				return err
			}
			f.mu.Lock()
			f.opts = so
			f.mu.Unlock()
			return nil
		}
	}
}

func (f *FedBus) leafListen() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("127.0.0.1:%d", f.leafPort)
}

// rememberLeafPort keeps the leaf port the server picked (it is known
// once the server is ready) for restarts, so that members reconnect.
func (f *FedBus) rememberLeafPort() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.opts != nil {
		if p := federation.LeafPort(f.opts); p > 0 {
			f.leafPort = p
		}
	}
}

// LeafURL is where members link to this (national) bus.
func (f *FedBus) LeafURL() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("nats-leaf://127.0.0.1:%d", f.leafPort)
}

func (f *FedBus) startFed() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := federation.Config{
		BusID:    f.ID,
		National: f.National,
		Client:   f.Service.Client,
		CA:       f.CA,
		Dir:      filepath.Join(f.Dir, "home", "federation"),
		Server:   f.Server.NATS(),
		Tracker:  f.Service.Tracker,
		Logger:   Logger(),
	}
	if f.fedConfig != nil {
		f.fedConfig(&cfg)
	}
	svc, err := federation.Start(ctx, cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.Fed = svc
}

func (f *FedBus) stopFed() {
	if f.Fed != nil {
		f.Fed.Stop()
		f.Fed = nil
	}
}

// StopBus stops the federation service and the bus (server included).
func (f *FedBus) StopBus() {
	f.stopFed()
	f.Bus.Stop()
}

// RestartBus starts a stopped bus again on the same directory and ports
// (or stops and starts a running one), with its federation service.
func (f *FedBus) RestartBus() {
	f.t.Helper()
	f.stopFed()
	f.Bus.Restart()
	f.rememberLeafPort()
	f.startFed()
}

// Bind binds code patterns to bus (a member, or this national bus itself)
// in this national bus's directory, as `docaxis federation member bind`
// does, and waits until this bus's federation service applies it.
func (f *FedBus) Bind(bus string, patterns ...string) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := federation.BindCodes(ctx, f.Service.Client, bus, patterns); err != nil {
		f.t.Fatal(err)
	}
}

// RemoveMember removes member from the federation of this national bus
// as `docaxis federation member remove` does: its leaf credentials are
// revoked on the running server, its CA, codes and agencies withdrawn.
func (f *FedBus) RemoveMember(member string) *federation.Removal {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A member listed without `member add` (as tests do) has no link
	// account: nothing to revoke.
	if err := f.Auth.RevokeLeaf(member); err != nil && !errors.Is(err, auth.ErrNoLink) {
		f.t.Fatal(err)
	}
	r, err := federation.RemoveBus(ctx, f.Service.Client, member)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}
