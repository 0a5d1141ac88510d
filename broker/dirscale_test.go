package broker_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// scaleSystem registers document system id on bus, serving codes (each
// with a binding signed by the bus's CA), and connects a client with the
// system's own credentials.
func scaleSystem(t *testing.T, bus *bustest.Bus, id string, codes ...string) *broker.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sid, err := bus.CA.IssueSystem(id, "Hệ thống "+id, signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Keystore.SaveSystem(sid); err != nil {
		t.Fatal(err)
	}
	if err := bus.Service.Client.RegisterSystem(ctx, broker.System{ID: id, Name: "Hệ thống " + id, Certificate: string(signing.EncodeCerts(sid.Chain...))}); err != nil {
		t.Fatal(err)
	}
	for _, code := range codes {
		scaleServe(t, bus, code, id)
	}
	creds := filepath.Join(bus.Dir, "home", "systems", id, "nats.creds")
	if err := bus.Auth.SystemCreds(id, creds); err != nil {
		t.Fatal(err)
	}
	c, err := broker.Connect(ctx, bus.URL(), broker.WithAgencyCredentials(creds), broker.WithKeystore(bus.Keystore),
		broker.WithTrust(bus.Trust), broker.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// scaleServe registers code as served by system (or moves it there), with
// a new signed binding after the ones it has.
func scaleServe(t *testing.T, bus *bustest.Bus, code, system string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := broker.Agency{Code: code, Name: "Cơ quan " + code}
	if prev, err := bus.Service.Client.LookupAgency(ctx, code); err == nil {
		a = *prev
	}
	raw, err := bus.CA.SignBinding(signing.Binding{Agency: code, System: system})
	if err != nil {
		t.Fatal(err)
	}
	a.System, a.Bindings = system, append(a.Bindings, raw)
	if err := bus.Service.Client.RegisterAgency(ctx, a); err != nil {
		t.Fatal(err)
	}
}

// The bus's client keeps its copy of a national directory without the
// system bindings (most of each entry's bytes) and reads them by key when
// a system's signature is checked: mail from a served agency still
// verifies, after a move too, and LookupAgency still returns them.
func TestBusClientReadsBindingsByKey(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	ctx := bustest.Context(t, 60*time.Second)
	const x, y, r = "000.01.01.H10", "000.02.01.H10", "000.00.00.H14"
	bus.AddAgency(r, "UBND tỉnh Sơn La")
	sysA := scaleSystem(t, bus, "sys-a", x, y)
	send := func(c *broker.Client, from string) {
		t.Helper()
		res, err := c.Send(ctx, envelope.New(from, []string{r}, "Công văn từ "+from))
		if err != nil {
			t.Fatalf("send as %s: %v", from, err)
		}
		if _, err := bus.Service.Client.WaitState(ctx, res.ID, r, envelope.StateSent); err != nil {
			t.Fatal(err)
		}
	}
	send(sysA, x)
	send(sysA, y)

	list, err := bus.Service.Client.Agencies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if len(a.Bindings) != 0 {
			t.Errorf("Agencies on the bus's client: %s holds %d bindings, want them left out", a.Code, len(a.Bindings))
		}
	}
	got, err := bus.Service.Client.LookupAgency(ctx, x)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Bindings) != 1 || got.System != "sys-a" {
		t.Fatalf("LookupAgency(%s) = system %q, %d bindings; want sys-a, 1", x, got.System, len(got.Bindings))
	}

	// A move: the bus reads the bindings again (the entry is newer than
	// what it read), so the new system's signature verifies.
	sysB := scaleSystem(t, bus, "sys-b")
	scaleServe(t, bus, x, "sys-b")
	send(sysB, x)
	if got, err = bus.Service.Client.LookupAgency(ctx, x); err != nil || len(got.Bindings) != 2 {
		t.Fatalf("after the move LookupAgency(%s) = %+v, %v; want 2 bindings", x, got, err)
	}
	if _, err := sysA.Send(ctx, envelope.New(x, []string{r}, "Gửi thay cơ quan đã chuyển đi")); !errors.Is(err, broker.ErrNotServed) {
		t.Fatalf("old system sending as %s after the move: %v, want ErrNotServed", x, err)
	}
}

// An operator's client that reads the directory by key (the CLI) writes
// it, finds an entry another client registered a moment ago, lists it
// whole, and sends and verifies like the bus's.
func TestDirectoryByKeyClient(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	ctx := bustest.Context(t, 60*time.Second)
	connect := func() *broker.Client {
		c, err := broker.Connect(ctx, bus.URL(), broker.WithDirectoryByKey(), broker.WithKeystore(bus.Keystore), broker.WithTrust(bus.Trust),
			broker.WithLogger(bustest.Logger()), broker.WithNATSOptions(bus.AdminOptions()...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	a, b := connect(), connect()
	const sender, rcpt, served = "000.00.00.G22", "000.00.00.H14", "000.03.01.H10"
	bus.AddAgency(sender, "Văn phòng Chính phủ")
	id, err := bus.CA.Issue(rcpt, "UBND tỉnh Sơn La", signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Keystore.Save(id); err != nil {
		t.Fatal(err)
	}
	if err := a.RegisterAgency(ctx, broker.Agency{Code: rcpt, Name: "UBND tỉnh Sơn La", Certificate: string(signing.EncodeCerts(id.Chain...))}); err != nil {
		t.Fatalf("register through a by-key client: %v", err)
	}
	if got, err := b.LookupAgency(ctx, rcpt); err != nil || got.Name != "UBND tỉnh Sơn La" {
		t.Fatalf("another by-key client looks up %s: %+v, %v", rcpt, got, err)
	}
	scaleSystem(t, bus, "sys-c", served)
	if got, err := b.LookupAgency(ctx, served); err != nil || len(got.Bindings) != 1 {
		t.Fatalf("by-key LookupAgency(%s) = %+v, %v; want its binding", served, got, err)
	}
	list, err := b.Agencies(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("by-key Agencies: %d entries, %v; want 3", len(list), err)
	}
	res, err := b.Send(ctx, envelope.New(sender, []string{rcpt}, "Gửi từ công cụ của người vận hành"))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := a.Mailbox(ctx, rcpt)
	if err != nil {
		t.Fatal(err)
	}
	n, err := mb.Fetch(ctx, 1, 10*time.Second, func(context.Context, *broker.Delivery) error { return nil })
	if err != nil || n != 1 {
		t.Fatalf("fetch through a by-key client: %d, %v", n, err)
	}
	if _, err := bus.Service.Client.WaitState(ctx, res.ID, rcpt, envelope.StateDelivered); err != nil {
		t.Fatal(err)
	}
}
