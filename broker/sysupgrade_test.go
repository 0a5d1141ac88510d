package broker_test

import (
	"encoding/json"
	"slices"
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

// TestUpgradeFromHomeBeforeSystems: a bus home as the version before
// document systems left it (directory entries of code, name, certificate
// and time only; a mailbox and a status box, sbox_*, for every agency;
// mail pending) is served by this version: the agencies keep their
// mailboxes and credentials, pending mail is received once, the status
// boxes are removed on start, and the directory then takes systems.
// (The status boxes are removed by EnsureMailboxes's dropStatusBoxes, on
// main since 10da0fb.)
func TestUpgradeFromHomeBeforeSystems(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(sonLa, "UBND tỉnh Sơn La")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	ctx := ctxT(t)
	js := bus.Service.Client.JetStream()
	kv, err := js.KeyValue(ctx, record.DirectoryBucket)
	if err != nil {
		t.Fatal(err)
	}
	// The previous version's layout: entries in its shape, status boxes.
	for _, code := range []string{govOffice, sonLa, ngheAn} {
		id := bus.Identity(code)
		old, _ := json.Marshal(map[string]any{"code": code, "name": code, "certificate": string(signing.EncodeCerts(id.Chain...)),
			"added": time.Now().UTC().Add(-24 * time.Hour)})
		if _, err := kv.Put(ctx, "agency."+envelope.Token(code), old); err != nil {
			t.Fatal(err)
		}
		if _, err := js.CreateOrUpdateConsumer(ctx, record.Stream, jetstream.ConsumerConfig{Durable: record.StatusDurable(code),
			FilterSubject: record.StatusFilter(code), AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy}); err != nil {
			t.Fatal(err)
		}
	}
	// Mail pending: one read before the upgrade, two not.
	gov := bus.Client(govOffice)
	var pending []string
	for i, subject := range []string{"đã đọc", "chờ 1", "chờ 2"} {
		res, err := gov.Send(ctx, envelope.New(govOffice, []string{sonLa, ngheAn}, subject), file("cv.txt", subject))
		if err != nil {
			t.Fatal(err)
		}
		waitState(t, gov, res.ID, sonLa, envelope.StateSent)
		if i == 0 {
			if l, _ := drain(t, bus.Client(sonLa), sonLa); len(l) != 1 {
				t.Fatalf("before the upgrade H14 got %v", l)
			}
			continue
		}
		pending = append(pending, res.ID)
	}
	credsH14 := bus.AgencyCreds(sonLa)

	bus.Restart()
	ctx = ctxT(t)
	js = bus.Service.Client.JetStream()
	st, err := js.Stream(ctx, record.Stream)
	if err != nil {
		t.Fatal(err)
	}
	names := st.ConsumerNames(ctx)
	var mailboxes []string
	for name := range names.Name() {
		if strings.HasPrefix(name, "sbox_") {
			t.Errorf("status box %s of the previous version still there", name)
		}
		if strings.HasPrefix(name, "mbox_") {
			mailboxes = append(mailboxes, name)
		}
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	if len(mailboxes) != 3 {
		t.Errorf("mailboxes after the upgrade: %v", mailboxes)
	}
	// The entries read in the new shape: active, with a version.
	a, err := bus.Service.Client.LookupAgency(ctx, sonLa)
	if err != nil || (a.State != "" && a.State != broker.StateActive) || a.Version == 0 && a.Certificate == "" {
		t.Fatalf("entry after the upgrade: %+v %v", a, err)
	}
	// The pending mail, once each, with the credentials issued before.
	c, err := broker.Connect(ctx, bus.URL(), broker.WithAgencyCredentials(credsH14), broker.WithKeystore(bus.Keystore),
		broker.WithTrust(bus.Trust), broker.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for who, cl := range map[string]*broker.Client{sonLa: c, ngheAn: bus.Client(ngheAn)} {
		l, outs := drain(t, cl, who)
		var ids []string
		for _, g := range l {
			ids = append(ids, g.ID)
			if g.Files["cv.txt"] == "" {
				t.Errorf("%s: attachment of %s not read", who, g.ID)
			}
		}
		want := pending
		if who == ngheAn {
			want = nil // it never read: all three
		}
		if who == sonLa && strings.Join(sorted(ids), " ") != strings.Join(sorted(want), " ") || who == ngheAn && len(ids) != 3 {
			t.Errorf("%s after the upgrade got %v (%+v), want %v", who, ids, outs, want)
		}
	}
	for _, id := range pending {
		waitState(t, bus.Service.Client, id, sonLa, envelope.StateDelivered)
	}
	// And the upgraded directory takes a system for an existing agency.
	addSystem(t, bus, "dms-a")
	serveAgencies(t, bus, "dms-a", ngheAn)
	if a, err := bus.Service.Client.LookupAgency(ctx, ngheAn); err != nil || a.System != "dms-a" {
		t.Fatalf("moved entry %+v %v", a, err)
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
