package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
)

// servedCode is the i-th agency of a test system: 000.ZZ.YY.S01, a
// standard code.
func servedCode(i int) string { return fmt.Sprintf("000.%02d.%02d.S01", i/100, i%100) }

// addSystem issues system id's certificate with the bus's CA, registers
// the system and its NATS credentials, and returns the credentials file
// and a keystore holding the system's key alone (as its DMS would).
func addSystem(t *testing.T, bus *bustest.Bus, id string) (creds string, ks *signing.Keystore) {
	t.Helper()
	sid, err := bus.CA.IssueSystem(id, "DMS "+id, signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ks, err = signing.OpenKeystore(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := ks.SaveSystem(sid); err != nil {
		t.Fatal(err)
	}
	if err := bus.Service.Client.RegisterSystem(ctxT(t), broker.System{ID: id, Name: "DMS " + id, Certificate: string(signing.EncodeCerts(sid.Chain...))}); err != nil {
		t.Fatal(err)
	}
	creds = filepath.Join(bus.Dir, "home", "systems", id, "nats.creds")
	if err := bus.Auth.SystemCreds(id, creds); err != nil {
		t.Fatal(err)
	}
	return creds, ks
}

// serveAgencies registers (or moves) codes as served by system ("" : by
// none), through an import signed with the bus's CA, as `docaxis agency
// import` does.
func serveAgencies(t *testing.T, bus *bustest.Bus, system string, codes ...string) {
	t.Helper()
	lines := make([]broker.ImportLine, len(codes))
	for i, code := range codes {
		lines[i] = broker.ImportLine{Line: i + 1, Agency: broker.Agency{Code: code, Name: "Đơn vị " + code, System: system}, Fields: []string{"system"}}
	}
	res, err := bus.Service.Client.ImportAgencies(ctxT(t), lines, broker.ImportOptions{Bind: bus.CA.SignBinding})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 {
		t.Fatalf("serve %v by %q: %v", codes, system, res.Errors)
	}
}

// systemClient connects with a system's credentials and key.
func systemClient(t *testing.T, bus *bustest.Bus, creds string, ks *signing.Keystore) *broker.Client {
	t.Helper()
	c, err := broker.Connect(ctxT(t), bus.URL(), broker.WithAgencyCredentials(creds), broker.WithKeystore(ks),
		broker.WithTrust(bus.Trust), broker.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// got is what a mailbox handed over: envelope id, recipient and the
// attachments' contents by name.
type got struct {
	ID, From, Recipient string
	Files               map[string]string
}

// drain fetches a mailbox until it stays empty and returns what was
// handed over, in no particular order.
func drain(t *testing.T, c *broker.Client, agency string) ([]got, []broker.Outcome) {
	t.Helper()
	var mu sync.Mutex
	var outs []broker.Outcome
	mb, err := c.Mailbox(ctxT(t), agency, broker.OnOutcome(func(o broker.Outcome) { mu.Lock(); outs = append(outs, o); mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	var list []got
	_, err = mb.Fetch(ctxT(t), 0, 500*time.Millisecond, func(ctx context.Context, d *broker.Delivery) error {
		g := got{ID: d.Envelope.ID, From: d.Envelope.From, Recipient: d.Recipient, Files: map[string]string{}}
		for _, a := range d.Envelope.Attachments {
			r, err := d.Open(ctx, a.Name)
			if err != nil {
				return fmt.Errorf("open %s: %w", a.Name, err)
			}
			b, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				return err
			}
			g.Files[a.Name] = string(b)
		}
		mu.Lock()
		list = append(list, g)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return list, outs
}

func file(name, content string) broker.File {
	return broker.File{Name: name, Reader: strings.NewReader(content), Size: int64(len(content))}
}

// TestSystemOf200Agencies: one system serves 200 agencies; mail to
// several of them arrives through its one mailbox, each delivery naming
// its recipient, attachments readable; it sends as several of them, with
// attachments, to a standalone agency and to one of its own, and the
// recipients verify the system's signature against the directory binding.
func TestSystemOf200Agencies(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	creds, ks := addSystem(t, bus, "dms-sonla")
	codes := make([]string, 200)
	for i := range codes {
		codes[i] = servedCode(i)
	}
	serveAgencies(t, bus, "dms-sonla", codes...)
	sys := systemClient(t, bus, creds, ks)
	gov := bus.Client(govOffice)
	ctx := ctxT(t)

	// In: G22 writes to three of them in one envelope and a fourth alone.
	in1, err := gov.Send(ctx, envelope.New(govOffice, []string{codes[0], codes[57], codes[199]}, "Gửi ba đơn vị"), file("cv.txt", "nội dung một"))
	if err != nil {
		t.Fatal(err)
	}
	in2, err := gov.Send(ctx, envelope.New(govOffice, []string{codes[120]}, "Gửi một đơn vị"), file("qd.txt", "nội dung hai"))
	if err != nil {
		t.Fatal(err)
	}
	// Out: the system writes as two of its agencies, to G22 and to one of
	// its own.
	out1, err := sys.Send(ctx, envelope.New(codes[5], []string{govOffice}, "Báo cáo của xã"), file("bc.txt", "báo cáo"))
	if err != nil {
		t.Fatal(err)
	}
	out2, err := sys.Send(ctx, envelope.New(codes[6], []string{codes[7]}, "Trong hệ thống"), file("tn.txt", "nội bộ"))
	if err != nil {
		t.Fatal(err)
	}

	list, outs := drain(t, sys, "")
	for _, o := range outs {
		if !o.Verified {
			t.Errorf("system mailbox outcome %+v", o)
		}
	}
	want := []got{
		{ID: in1.ID, From: govOffice, Recipient: codes[0], Files: map[string]string{"cv.txt": "nội dung một"}},
		{ID: in1.ID, From: govOffice, Recipient: codes[57], Files: map[string]string{"cv.txt": "nội dung một"}},
		{ID: in1.ID, From: govOffice, Recipient: codes[199], Files: map[string]string{"cv.txt": "nội dung một"}},
		{ID: in2.ID, From: govOffice, Recipient: codes[120], Files: map[string]string{"qd.txt": "nội dung hai"}},
		{ID: out2.ID, From: codes[6], Recipient: codes[7], Files: map[string]string{"tn.txt": "nội bộ"}},
	}
	sortGot(list)
	sortGot(want)
	if fmt.Sprint(list) != fmt.Sprint(want) {
		t.Fatalf("system mailbox handed\n%v\nwant\n%v", list, want)
	}
	// Receipts were signed for each recipient: the senders see delivered.
	for _, r := range []string{codes[0], codes[57], codes[199]} {
		waitState(t, gov, in1.ID, r, envelope.StateDelivered)
	}
	// A system has no tracking service of its own yet: the bus's view.
	waitState(t, bus.Service.Client, out2.ID, codes[7], envelope.StateDelivered)

	gl, gouts := drain(t, gov, govOffice)
	if len(gl) != 1 || gl[0].ID != out1.ID || gl[0].From != codes[5] || gl[0].Files["bc.txt"] != "báo cáo" {
		t.Fatalf("G22 got %v (%+v)", gl, gouts)
	}
	waitState(t, gov, out1.ID, govOffice, envelope.StateDelivered)
	// Nothing twice.
	if again, _ := drain(t, sys, ""); len(again) != 0 {
		t.Fatalf("system mailbox handed again %v", again)
	}
}

func sortGot(l []got) {
	slices.SortFunc(l, func(a, b got) int { return strings.Compare(a.ID+a.Recipient, b.ID+b.Recipient) })
}

// TestSystemSendsAsAgencyItDoesNotServe: the bus refuses, with
// ErrNotServed naming the system and the agency, and nothing is recorded.
func TestSystemSendsAsAgencyItDoesNotServe(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(sonLa, "UBND tỉnh Sơn La")
	creds, ks := addSystem(t, bus, "dms-a")
	addSystem(t, bus, "dms-b")
	serveAgencies(t, bus, "dms-a", servedCode(1))
	serveAgencies(t, bus, "dms-b", servedCode(2))
	sys := systemClient(t, bus, creds, ks)
	ctx := ctxT(t)
	for _, from := range []string{govOffice, servedCode(2), servedCode(3)} {
		e := envelope.New(from, []string{sonLa}, "Giả mạo")
		_, err := sys.Send(ctx, e)
		if err == nil {
			t.Fatalf("system dms-a sent as %s", from)
		}
		if from != servedCode(3) && !errors.Is(err, broker.ErrNotServed) {
			t.Errorf("send as %s: %v, want ErrNotServed", from, err)
		}
		if !strings.Contains(err.Error(), from) {
			t.Errorf("send as %s: error %q does not name the agency", from, err)
		}
		if _, err := bus.Service.Client.Tracking(ctx, e.ID, sonLa); err == nil {
			t.Errorf("send as %s: envelope %s is tracked", from, e.ID)
		}
	}
	if l, _ := drain(t, bus.Client(sonLa), sonLa); len(l) != 0 {
		t.Fatalf("H14 received %v", l)
	}
	// And the one it serves goes through.
	if _, err := sys.Send(ctx, envelope.New(servedCode(1), []string{sonLa}, "Đúng")); err != nil {
		t.Fatal(err)
	}
}

// TestMoveAgencyBetweenSystemsWithMailPending: mail stored for an agency
// before it moves is delivered once, by the new system.
func TestMoveAgencyBetweenSystemsWithMailPending(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	credsA, ksA := addSystem(t, bus, "dms-a")
	credsB, ksB := addSystem(t, bus, "dms-b")
	moving, staying := servedCode(1), servedCode(2)
	serveAgencies(t, bus, "dms-a", moving, staying)
	sysA, sysB := systemClient(t, bus, credsA, ksA), systemClient(t, bus, credsB, ksB)
	gov := bus.Client(govOffice)
	ctx := ctxT(t)

	// One copy read by A before the move, three pending at the move.
	first, err := gov.Send(ctx, envelope.New(govOffice, []string{moving}, "Trước"))
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := drain(t, sysA, ""); len(l) != 1 || l[0].ID != first.ID {
		t.Fatalf("A before the move: %v", l)
	}
	var pending []string
	for i := range 3 {
		res, err := gov.Send(ctx, envelope.New(govOffice, []string{moving, staying}, fmt.Sprintf("Chờ %d", i)), file("f.txt", fmt.Sprint("tệp ", i)))
		if err != nil {
			t.Fatal(err)
		}
		waitState(t, gov, res.ID, moving, envelope.StateSent)
		pending = append(pending, res.ID)
	}
	serveAgencies(t, bus, "dms-b", moving)
	after, err := gov.Send(ctx, envelope.New(govOffice, []string{moving}, "Sau"))
	if err != nil {
		t.Fatal(err)
	}

	// A now hands over only the staying agency's copies.
	la, _ := drain(t, sysA, "")
	for _, g := range la {
		if g.Recipient != staying {
			t.Errorf("system A handed %v after %s moved", g, moving)
		}
	}
	if len(la) != 3 {
		t.Errorf("system A handed %d copies, want the 3 of %s", len(la), staying)
	}
	lb, _ := drain(t, sysB, "")
	var ids []string
	for _, g := range lb {
		if g.Recipient != moving {
			t.Errorf("system B handed %v", g)
		}
		ids = append(ids, g.ID)
		if len(g.Files) > 0 && !strings.HasPrefix(g.Files["f.txt"], "tệp ") {
			t.Errorf("system B read attachment %q", g.Files)
		}
	}
	wantIDs := append(slices.Clone(pending), after.ID)
	slices.Sort(ids)
	slices.Sort(wantIDs)
	if !slices.Equal(ids, wantIDs) {
		t.Fatalf("system B handed %v, want each of %v once", ids, wantIDs)
	}
	for _, id := range wantIDs {
		waitState(t, gov, id, moving, envelope.StateDelivered)
	}
	if l, _ := drain(t, sysB, ""); len(l) != 0 {
		t.Fatalf("system B handed again %v", l)
	}
	// The transfer consumer is dropped once drained.
	if err := bus.Service.Client.DrainTransfers(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Service.Client.JetStream().Consumer(ctx, record.Stream, broker.TransferDurable("dms-b")); err == nil {
		t.Error("transfer consumer of dms-b still there after its mail was handed over")
	}
}

// TestStandaloneToSystemAndBack: an agency with its own mailbox joins a
// system, then leaves it for its own key again; mail pending at each step
// is delivered once, by whoever serves it then.
func TestStandaloneToSystemAndBack(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	id := bus.AddAgency(sonLa, "UBND tỉnh Sơn La")
	creds, ks := addSystem(t, bus, "dms-a")
	sys := systemClient(t, bus, creds, ks)
	gov := bus.Client(govOffice)
	ctx := ctxT(t)
	send := func(subject string) string {
		t.Helper()
		res, err := gov.Send(ctx, envelope.New(govOffice, []string{sonLa}, subject))
		if err != nil {
			t.Fatal(err)
		}
		waitState(t, gov, res.ID, sonLa, envelope.StateSent)
		return res.ID
	}
	ids := func(l []got) []string {
		var out []string
		for _, g := range l {
			out = append(out, g.ID)
		}
		slices.Sort(out)
		return out
	}
	read := send("đọc khi còn độc lập")
	if l, _ := drain(t, bus.Client(sonLa), sonLa); !slices.Equal(ids(l), []string{read}) {
		t.Fatalf("standalone got %v", l)
	}
	p1 := send("chờ khi chuyển vào hệ thống")
	serveAgencies(t, bus, "dms-a", sonLa)
	if _, err := bus.Service.Client.JetStream().Consumer(ctx, record.Stream, record.MailboxDurable(sonLa)); err == nil {
		t.Error("own mailbox of H14 still there once a system serves it")
	}
	p2 := send("sau khi chuyển")
	want := []string{p1, p2}
	slices.Sort(want)
	if l, _ := drain(t, sys, ""); !slices.Equal(ids(l), want) {
		t.Fatalf("system got %v, want %v", ids(l), want)
	}
	waitState(t, gov, p1, sonLa, envelope.StateDelivered)

	// Back to its own key: the end of the binding is signed.
	p3 := send("chờ khi rời hệ thống")
	end, err := bus.CA.SignBinding(signing.Binding{Agency: sonLa})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := bus.Service.Client.LookupAgency(ctx, sonLa)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Service.Client.RegisterAgency(ctx, broker.Agency{Code: sonLa, Name: cur.Name, Certificate: string(signing.EncodeCerts(id.Chain...)),
		Bindings: append(cur.Bindings, end)}); err != nil {
		t.Fatal(err)
	}
	p4 := send("sau khi rời")
	if l, _ := drain(t, sys, ""); len(l) != 0 {
		t.Fatalf("system still got %v after H14 left", l)
	}
	want = []string{p3, p4}
	slices.Sort(want)
	if l, outs := drain(t, bus.Client(sonLa), sonLa); !slices.Equal(ids(l), want) {
		t.Fatalf("standalone again got %v (%+v), want %v", ids(l), outs, want)
	}
	// The system may no longer sign for it.
	if _, err := sys.Send(ctx, envelope.New(sonLa, []string{govOffice}, "Không còn")); !errors.Is(err, broker.ErrNotServed) {
		t.Fatalf("system sent for an agency that left: %v", err)
	}
}

// TestMailToInactiveAgency: deleted and suspended agencies are refused,
// by a standalone sender and by a system, with ErrInactive naming them.
func TestMailToInactiveAgency(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(sonLa, "UBND tỉnh Sơn La")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	creds, ks := addSystem(t, bus, "dms-a")
	serveAgencies(t, bus, "dms-a", servedCode(1), servedCode(2))
	sys := systemClient(t, bus, creds, ks)
	gov := bus.Client(govOffice)
	ctx := ctxT(t)
	admin := bus.Service.Client
	setState := func(code, state string) {
		t.Helper()
		a, err := admin.LookupAgency(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		a.State = state
		if err := admin.RegisterAgency(ctx, *a); err != nil {
			t.Fatal(err)
		}
	}
	setState(sonLa, broker.StateDeleted)
	setState(ngheAn, broker.StateSuspended)
	setState(servedCode(2), broker.StateDeleted)
	for _, tc := range []struct {
		c    *broker.Client
		from string
	}{{gov, govOffice}, {sys, servedCode(1)}} {
		for _, to := range []string{sonLa, ngheAn, servedCode(2)} {
			e := envelope.New(tc.from, []string{to}, "Tới đơn vị không hoạt động")
			_, err := tc.c.Send(ctx, e)
			if !errors.Is(err, broker.ErrInactive) && !(errors.Is(err, broker.ErrPermission) && strings.Contains(err.Error(), broker.ErrInactive.Error())) {
				t.Errorf("%s → %s: %v, want ErrInactive", tc.from, to, err)
			} else if !strings.Contains(err.Error(), to) {
				t.Errorf("%s → %s: error %q does not name the recipient", tc.from, to, err)
			}
			if _, err := admin.Tracking(ctx, e.ID, to); err == nil {
				t.Errorf("%s → %s: tracked", tc.from, to)
			}
		}
	}
	// A deleted agency keeps its entry, with the time.
	a, err := admin.LookupAgency(ctx, sonLa)
	if err != nil || a.State != broker.StateDeleted || a.Deleted.IsZero() {
		t.Fatalf("deleted entry %+v, %v", a, err)
	}
	// And the system may not send as its deleted agency either.
	if _, err := sys.Send(ctx, envelope.New(servedCode(2), []string{govOffice}, "Đã xoá")); err == nil {
		t.Fatal("system sent as its deleted agency")
	}
}

// TestSystemCredentialAfterRemove: a removed system's client can neither
// send nor read its mailbox, and after the bus's restart its NATS
// credentials are refused outright.
func TestSystemCredentialAfterRemove(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	creds, ks := addSystem(t, bus, "dms-a")
	serveAgencies(t, bus, "dms-a", servedCode(1))
	sys := systemClient(t, bus, creds, ks)
	ctx := ctxT(t)
	admin := bus.Service.Client
	if err := admin.RemoveSystem(ctx, "dms-a"); err == nil || !strings.Contains(err.Error(), "still serves 1") {
		t.Fatalf("remove a system serving an agency: %v", err)
	}
	// Its agency goes standalone-less (directory only) first.
	serveAgencies(t, bus, "", servedCode(1))
	if err := admin.RemoveSystem(ctx, "dms-a"); err != nil {
		t.Fatal(err)
	}
	if err := bus.Auth.RevokeCreds(creds); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.LookupSystem(ctx, "dms-a"); !errors.Is(err, broker.ErrUnknownSystem) {
		t.Fatalf("lookup removed system: %v", err)
	}
	// The open connection: refused by the bus's checks.
	if _, err := sys.Send(ctx, envelope.New(servedCode(1), []string{govOffice}, "Sau khi gỡ")); err == nil {
		t.Fatal("removed system sent")
	}
	if _, err := sys.Mailbox(ctx, ""); !errors.Is(err, broker.ErrNoMailbox) {
		t.Fatalf("removed system opened its mailbox: %v", err)
	}
	// A new connection after the bus took the revocation: refused.
	bus.Restart()
	_, err := broker.Connect(ctx, bus.URL(), broker.WithAgencyCredentials(creds), broker.WithKeystore(ks),
		broker.WithTrust(bus.Trust), broker.WithLogger(bustest.Logger()), broker.WithNATSOptions(nats.MaxReconnects(0)))
	if err == nil {
		t.Fatal("revoked system credentials connected")
	}
	// A removed system serves no agency again.
	admin = bus.Service.Client
	lines := []broker.ImportLine{{Line: 1, Agency: broker.Agency{Code: servedCode(1), Name: "x", System: "dms-a"}, Fields: []string{"system"}}}
	res, err := admin.ImportAgencies(ctx, lines, broker.ImportOptions{Bind: bus.CA.SignBinding})
	if err != nil || len(res.Errors) != 1 || !errors.Is(res.Errors[0], broker.ErrUnknownSystem) {
		t.Fatalf("serve by a removed system: %+v %v", res, err)
	}
}

// A bus home kept by an earlier version, whose mailbox consumers let the
// server give up on a copy after MaxDeliver deliveries, is brought to
// deliveries without end (the mailbox bounds them) when serve starts.
func TestUpgradeMailboxesDeliverWithoutEnd(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	addSystem(t, bus, "qlvb")
	serveAgencies(t, bus, "qlvb", servedCode(1))
	names := []string{record.MailboxDurable(ngheAn), broker.SystemDurable("qlvb")}
	ctx := ctxT(t)
	js := bus.Service.Client.JetStream()
	for _, name := range names {
		cons, err := js.Consumer(ctx, record.Stream, name)
		if err != nil {
			t.Fatal(err)
		}
		cfg := cons.CachedInfo().Config
		cfg.MaxDeliver = broker.MaxDeliver // as an earlier version made it
		if _, err := js.UpdateConsumer(ctx, record.Stream, cfg); err != nil {
			t.Fatal(err)
		}
	}
	bus.Restart()
	js = bus.Service.Client.JetStream()
	for _, name := range names {
		cons, err := js.Consumer(ctx, record.Stream, name)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := cons.CachedInfo().Config; cfg.MaxDeliver != -1 || cfg.AckWait != broker.MailboxAckWait {
			t.Errorf("consumer %s after the upgrade: MaxDeliver %d, AckWait %s", name, cfg.MaxDeliver, cfg.AckWait)
		}
	}
}
