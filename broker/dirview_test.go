package broker_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// agencyClient connects as code with its own credentials and a trust of
// its own (as a DMS elsewhere holds it, not shared with the bus).
func agencyClient(t *testing.T, bus *bustest.Bus, code string, opts ...broker.Option) *broker.Client {
	t.Helper()
	opts = append([]broker.Option{broker.WithAgencyCredentials(bus.AgencyCreds(code)), broker.WithIdentity(bus.Identity(code)),
		broker.WithTrust(signing.NewTrust(bus.CA.Cert)), broker.WithLogger(bustest.Logger())}, opts...)
	c, err := broker.Connect(ctxT(t), bus.URL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// A CRL published after a recipient's client read the directory counts
// for every copy recorded after it, however long the client keeps what it
// read: the mailbox reads the revocations again before verifying.
func TestAgencyClientSeesRevocationBeforeVerifying(t *testing.T) {
	bus := securedBus(t)
	ctx := ctxT(t)
	recipient := agencyClient(t, bus, ngheAn, broker.WithDirectoryRefresh(time.Hour))
	sender := agencyClient(t, bus, govOffice, broker.WithDirectoryRefresh(time.Hour))
	before, err := sender.Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Trước khi thu hồi"))
	if err != nil {
		t.Fatal(err)
	}
	crl, err := bus.CA.NewCRL([]signing.Revocation{{Serial: bus.Identity(govOffice).Certificate().SerialNumber, At: time.Now().Add(-time.Minute)}}, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Service.Client.PublishCRL(ctx, crl); err != nil {
		t.Fatal(err)
	}
	// The sender's client has not read the CRL yet (an hour): what it
	// sends now is stored, and must not verify at the recipient.
	after, err := sender.Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Sau khi thu hồi"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]broker.Outcome{}
	for _, o := range receiveAll(t, recipient, ngheAn) {
		got[o.ID] = o
	}
	// The first was recorded before the revocation was published, but it
	// claims a creation time after the revocation time: refused as well.
	for _, id := range []string{before.ID, after.ID} {
		if o := got[id]; o.Verified || !strings.Contains(o.Error, "revoked") {
			t.Errorf("envelope %s from a revoked certificate: %+v", id, o)
		}
	}
}

// Changes to the directory reach an agency's client: a new agency at once
// when it is named, limits within the refresh period.
func TestAgencyClientSeesDirectoryChanges(t *testing.T) {
	bus := securedBus(t)
	ctx := ctxT(t)
	c := agencyClient(t, bus, govOffice, broker.WithDirectoryRefresh(100*time.Millisecond))
	if got := c.Limits(); got != broker.DefaultLimits {
		t.Fatalf("limits before: %+v", got)
	}
	newcomer := "000.00.00.H62"
	bus.AddAgency(newcomer, "UBND tỉnh Lai Châu")
	if _, err := c.Send(ctx, envelope.New(govOffice, []string{newcomer}, "Gửi cơ quan mới đăng ký")); err != nil {
		t.Fatalf("send to an agency registered after the client connected: %v", err)
	}
	if _, err := c.LookupAgency(ctx, "000.00.00.H63"); !errors.Is(err, broker.ErrUnknownAgency) {
		t.Fatalf("unknown agency: %v", err)
	}
	l := broker.DefaultLimits
	l.MaxRecipients = 2
	if err := bus.Service.Client.SetLimits(ctx, l); err != nil {
		t.Fatal(err)
	}
	for c.Limits().MaxRecipients != 2 {
		select {
		case <-ctx.Done():
			t.Fatalf("limits not seen: %+v", c.Limits())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := c.Send(ctx, envelope.New(govOffice, []string{ngheAn, sonLa, newcomer}, "Quá số nơi nhận")); !errors.Is(err, broker.ErrLimit) {
		t.Fatalf("send over the new limit: %v", err)
	}
}

// An agency's client does not load the directory: it reads the entries it
// needs; a listing reads every entry page by page.
func TestAgencyClientReadsOnlyWhatItNeeds(t *testing.T) {
	bus := securedBus(t)
	ctx := ctxT(t)
	const extra = 300 // more than one page of a listing
	for i := range extra {
		bus.AddAgency(fmt.Sprintf("000.%02d.%02d.H%02d", i/100, i%100, 10+i%90), fmt.Sprintf("Cơ quan %d", i))
	}
	c := agencyClient(t, bus, govOffice)
	if n := broker.CachedAgencies(c); n != 0 {
		t.Fatalf("%d entries held right after connecting", n)
	}
	if _, err := c.Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Một nơi nhận")); err != nil {
		t.Fatal(err)
	}
	if n := broker.CachedAgencies(c); n > 2 {
		t.Fatalf("%d entries held after one send", n)
	}
	list, err := c.Agencies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != extra+3 {
		t.Fatalf("listing has %d agencies, want %d", len(list), extra+3)
	}
	if n := broker.CachedAgencies(c); n > 2 {
		t.Fatalf("%d entries held after a listing", n)
	}
	// The received copy verifies with the sender's entry read on demand.
	if outs := receiveAll(t, agencyClient(t, bus, ngheAn), ngheAn); len(outs) != 1 || !outs[0].Verified {
		t.Fatalf("recipient: %+v", outs)
	}
}

// The bus makes missing mailboxes and brings old ones to this version's
// settings when it starts: agencies may no longer do it themselves.
func TestMailboxesMadeAndUpdatedOnStart(t *testing.T) {
	bus := securedBus(t)
	ctx := ctxT(t)
	js := bus.Service.Client.JetStream()
	if err := js.DeleteConsumer(ctx, record.Stream, record.MailboxDurable(ngheAn)); err != nil {
		t.Fatal(err)
	}
	old := broker.MailboxConsumerConfig(sonLa)
	old.AckWait = 5 * time.Second
	if _, err := js.UpdateConsumer(ctx, record.Stream, old); err != nil {
		t.Fatal(err)
	}
	res, err := bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{ngheAn, sonLa}, "Trước khi nâng cấp"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Client(ngheAn).Mailbox(ctx, ngheAn); !errors.Is(err, broker.ErrNoMailbox) {
		t.Fatalf("mailbox without a consumer: %v", err)
	}
	bus.Restart()
	ctx = ctxT(t)
	js = bus.Service.Client.JetStream()
	for _, code := range []string{ngheAn, sonLa} {
		cons, err := js.Consumer(ctx, record.Stream, record.MailboxDurable(code))
		if err != nil {
			t.Fatalf("mailbox of %s after the restart: %v", code, err)
		}
		if cfg := cons.CachedInfo().Config; cfg.AckWait != broker.MailboxAckWait || cfg.FilterSubject != record.MailboxFilter(code) {
			t.Fatalf("mailbox of %s: %+v", code, cfg)
		}
	}
	// Sơn La's copy waited in its mailbox; Nghệ An's new mailbox starts
	// with everything on record for it.
	for _, code := range []string{ngheAn, sonLa} {
		if outs := receiveAll(t, agencyClient(t, bus, code), code); len(outs) != 1 || outs[0].ID != res.ID || !outs[0].Verified {
			t.Fatalf("%s receives: %+v", code, outs)
		}
	}
	if _, err := js.Consumer(ctx, record.Stream, record.MailboxDurable("000.00.00.H63")); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("a mailbox for an unregistered agency: %v", err)
	}
}

// Received markers are read and written by key with an agency's
// credentials: a redelivered envelope that was handed over is not handed
// over again.
func TestAgencyReceivedMarkers(t *testing.T) {
	// The crashed recipient's envelope comes back after the ack wait.
	defer func(d time.Duration) { broker.MailboxAckWait = d }(broker.MailboxAckWait)
	broker.MailboxAckWait = 2 * time.Second
	bus := securedBus(t)
	ctx := ctxT(t)
	res, err := bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Một lần thôi"))
	if err != nil {
		t.Fatal(err)
	}
	broker.SetCrashHooks(nil, func(e *envelope.Envelope) bool { return e.ID == res.ID })
	t.Cleanup(func() { broker.SetCrashHooks(nil, nil) })
	handed := 0
	c := agencyClient(t, bus, ngheAn)
	mb, err := c.Mailbox(ctx, ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Fetch(ctx, 1, 5*time.Second, func(context.Context, *broker.Delivery) error { handed++; return nil }); err != nil {
		t.Fatal(err)
	}
	broker.SetCrashHooks(nil, nil)
	// A new process of the same agency gets the copy again after the ack
	// wait; the marker says it was handed over.
	var outs []broker.Outcome
	mb2, err := agencyClient(t, bus, ngheAn).Mailbox(ctx, ngheAn, broker.OnOutcome(func(o broker.Outcome) { outs = append(outs, o) }))
	if err != nil {
		t.Fatal(err)
	}
	for len(outs) == 0 {
		if _, err := mb2.Fetch(ctx, 1, time.Second, func(context.Context, *broker.Delivery) error { handed++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if handed != 1 || !outs[0].Duplicate {
		t.Fatalf("handed %d times, outcome %+v", handed, outs)
	}
}
