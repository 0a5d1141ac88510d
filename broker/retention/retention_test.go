package retention_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/broker/retention"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	govOffice = "000.00.00.G22"
	sonLa     = "000.00.00.H14"
	ngheAn    = "000.00.00.H41"
	year      = 365 * 24 * time.Hour
)

func ctxT(t testing.TB) context.Context { return bustest.Context(t, 60*time.Second) }

type clock struct{ now atomic.Pointer[time.Time] }

func (c *clock) Now() time.Time  { return *c.now.Load() }
func (c *clock) set(t time.Time) { c.now.Store(&t) }

type fixture struct {
	t     *testing.T
	bus   *bustest.Bus
	admin *broker.Client
}

func (f *fixture) send(to, subject, file string) (id, sum string) {
	f.t.Helper()
	ctx := ctxT(f.t)
	var files []broker.File
	if file != "" {
		files = append(files, broker.File{Name: subject + ".txt", Reader: strings.NewReader(file), Size: int64(len(file))})
	}
	res, err := f.bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{to}, subject), files...)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.admin.WaitState(ctx, res.ID, to, envelope.StateSent); err != nil {
		f.t.Fatal(err)
	}
	if file != "" {
		sum = envelope.Digest([]byte(file))
	}
	return res.ID, sum
}

func (f *fixture) receive(as string, ids ...string) {
	f.t.Helper()
	ctx := ctxT(f.t)
	mb, err := f.bus.Client(as).Mailbox(ctx, as)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := mb.Fetch(ctx, 0, 500*time.Millisecond, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
		f.t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := f.admin.WaitState(ctx, id, as, envelope.StateDelivered); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *fixture) inRecord(seq uint64) bool {
	f.t.Helper()
	st, err := f.admin.JetStream().Stream(ctxT(f.t), record.Stream)
	if err != nil {
		f.t.Fatal(err)
	}
	_, err = st.GetMsg(ctxT(f.t), seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return true
}

func (f *fixture) stored(sum string) bool {
	_, err := f.admin.Store().Stat(ctxT(f.t), storage.Key(sum))
	if errors.Is(err, storage.ErrNotFound) {
		return false
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return true
}

func parts(items []retention.Item) map[string][]string {
	out := map[string][]string{}
	for _, it := range items {
		k := it.Envelope
		if it.Part == retention.PartAttachment {
			k = it.SHA256
		}
		out[it.Part] = append(out[it.Part], k)
	}
	return out
}

func has(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// TestRetentionWithLegalHold runs the policy on a real bus whose clock is
// moved forward: statuses after 2 years, attachment bytes 5 years after
// delivery, the record after 10; an agency and a document under legal
// hold keep everything, and the plan says so.
func TestRetentionWithLegalHold(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	for _, c := range []string{govOffice, sonLa, ngheAn} {
		bus.AddAgency(c, c)
	}
	f := &fixture{t: t, bus: bus, admin: bus.Service.Client}
	ctx := ctxT(t)
	a, sumA := f.send(sonLa, "A", "Nội dung A "+envelope.NewID())
	b, sumB := f.send(ngheAn, "B", "Nội dung B "+envelope.NewID())
	d, _ := f.send(sonLa, "D", "")
	f.receive(ngheAn, b)
	f.receive(sonLa, a, d)
	c, sumC := f.send(sonLa, "C", "Nội dung C "+envelope.NewID()) // never fetched
	if _, err := bus.Client(sonLa).Mark(ctx, sonLa, a, envelope.StateAccepted, broker.MarkOptions{}); err != nil {
		t.Fatal(err)
	}
	trA, err := f.admin.WaitState(ctx, a, sonLa, envelope.StateAccepted)
	if err != nil {
		t.Fatal(err)
	}
	var statusesA []uint64
	for _, e := range trA.History[1:] {
		statusesA = append(statusesA, e.Seq)
	}
	trB, err := f.admin.Tracking(ctx, b, ngheAn)
	if err != nil {
		t.Fatal(err)
	}

	clk := &clock{}
	start := time.Now()
	clk.set(start)
	r, err := retention.Open(ctx, f.admin, f.admin.Store(), 1, retention.WithClock(clk.Now), retention.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := r.Plan(ctx); err != nil || len(p.Remove)+len(p.Held) != 0 {
		t.Fatalf("plan without a policy: %+v, %v", p, err)
	}
	if err := r.SetPolicy(ctx, retention.Policy{Record: 10 * year, Statuses: 2 * year, Attachments: 5 * year}, "test"); err != nil {
		t.Fatal(err)
	}
	if err := r.Place(ctx, retention.Hold{Scope: retention.ScopeAgency, Target: ngheAn, Reason: "Thanh tra số 12/QĐ-TTCP"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Place(ctx, retention.Hold{Scope: retention.ScopeDocument, Target: d, Reason: "Vụ án 45/2025"}); err != nil {
		t.Fatal(err)
	}
	if p, err := r.Plan(ctx); err != nil || len(p.Remove)+len(p.Held) != 0 {
		t.Fatalf("plan today: %+v, %v", p, err)
	}

	// Three years on: A's statuses go; B's are held with its agency.
	clk.set(start.Add(3 * year))
	p, err := r.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rm, held := parts(p.Remove), parts(p.Held); len(rm) != 1 || len(rm[retention.PartStatuses]) != 1 || rm[retention.PartStatuses][0] != a ||
		len(held) != 1 || !has(held[retention.PartStatuses], b) {
		t.Fatalf("plan at 3 years: remove %v, held %v", rm, held)
	}
	if !strings.Contains(strings.Join(p.Held[0].HeldBy, ";"), "Thanh tra") {
		t.Fatalf("held item does not say which hold: %+v", p.Held[0])
	}
	res, err := r.Apply(ctx)
	if err != nil || res.Messages != len(statusesA) {
		t.Fatalf("apply at 3 years: %+v, %v (want %d messages)", res, err, len(statusesA))
	}
	for _, seq := range statusesA {
		if f.inRecord(seq) {
			t.Fatalf("status #%d of A still in the record", seq)
		}
	}
	if !f.inRecord(trA.Seq) || !f.inRecord(trB.History[1].Seq) {
		t.Fatal("A's copy or B's held receipt removed with the statuses")
	}
	if tr, err := f.admin.Tracking(ctx, a, sonLa); err != nil || tr.State != envelope.StateAccepted {
		t.Fatalf("A's tracking after its statuses went: %+v, %v", tr, err)
	}
	if p, err := r.Plan(ctx); err != nil || len(p.Remove) != 0 {
		t.Fatalf("plan again at 3 years: %+v, %v", p, err)
	}

	// Six years on: A's bytes go (delivered 5 years ago); B's are held;
	// C was never delivered, so its bytes stay.
	clk.set(start.Add(6 * year))
	p, err = r.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rm, held := parts(p.Remove), parts(p.Held); len(rm) != 1 || len(rm[retention.PartAttachment]) != 1 || rm[retention.PartAttachment][0] != sumA ||
		!has(held[retention.PartAttachment], sumB) {
		t.Fatalf("plan at 6 years: remove %v, held %v", rm, held)
	}
	if res, err := r.Apply(ctx); err != nil || res.Attachments != 1 {
		t.Fatalf("apply at 6 years: %+v, %v", res, err)
	}
	if f.stored(sumA) || !f.stored(sumB) || !f.stored(sumC) {
		t.Fatalf("after 6 years: A stored %v (want false), B %v, C %v (want true)", f.stored(sumA), f.stored(sumB), f.stored(sumC))
	}

	// Eleven years on: the record of A and C goes, and with C's record
	// its bytes; B and D are held and reported.
	clk.set(start.Add(11 * year))
	p, err = r.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rm, held := parts(p.Remove), parts(p.Held)
	if len(rm[retention.PartRecord]) != 2 || !has(rm[retention.PartRecord], a) || !has(rm[retention.PartRecord], c) ||
		!has(rm[retention.PartAttachment], sumC) || !has(held[retention.PartRecord], b) || !has(held[retention.PartRecord], d) {
		t.Fatalf("plan at 11 years: remove %v, held %v", rm, held)
	}
	if res, err := r.Apply(ctx); err != nil || res.Pairs != 2 {
		t.Fatalf("apply at 11 years: %+v, %v", res, err)
	}
	for _, id := range []string{a, c} {
		if _, err := f.admin.Tracking(ctx, id, sonLa); !errors.Is(err, broker.ErrNotFound) {
			t.Fatalf("tracking of %s after its record went: %v", id, err)
		}
	}
	if f.inRecord(trA.Seq) || f.stored(sumC) {
		t.Fatal("A's copy or C's bytes still there after 11 years")
	}
	if !f.inRecord(trB.Seq) || !f.stored(sumB) {
		t.Fatal("held B removed")
	}
	if tr, err := f.admin.Tracking(ctx, d, sonLa); err != nil || !f.inRecord(tr.Seq) {
		t.Fatalf("held D: %+v, %v", tr, err)
	}
	p, err = r.Plan(ctx)
	if err != nil || len(p.Remove) != 0 || len(p.Held) == 0 {
		t.Fatalf("plan after applying: %+v, %v (nothing to remove, the held still reported)", p, err)
	}

	// Released, the hold keeps nothing more.
	if err := r.Release(ctx, retention.ScopeDocument, d); err != nil {
		t.Fatal(err)
	}
	if res, err := r.Apply(ctx); err != nil || res.Pairs != 1 {
		t.Fatalf("apply after the release: %+v, %v", res, err)
	}
}

func TestPolicyAndHoldRefused(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	r, err := retention.Open(ctxT(t), bus.Service.Client, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []retention.Policy{
		{Record: -year},
		{Record: time.Hour},
		{Record: year, Statuses: 2 * year},
	} {
		if err := r.SetPolicy(ctxT(t), p, ""); !errors.Is(err, retention.ErrPolicy) {
			t.Errorf("policy %+v: %v", p, err)
		}
	}
	for _, h := range []retention.Hold{
		{Scope: "bus", Target: govOffice, Reason: "x"},
		{Scope: retention.ScopeAgency, Target: "not a code", Reason: "x"},
		{Scope: retention.ScopeDocument, Target: "123", Reason: "x"},
		{Scope: retention.ScopeAgency, Target: govOffice, Reason: "  "},
		{Scope: retention.ScopeAgency, Target: govOffice, Reason: strings.Repeat("x", 2000)},
	} {
		if err := r.Place(ctxT(t), h); !errors.Is(err, retention.ErrHold) {
			t.Errorf("hold %+v: %v", h, err)
		}
	}
	if err := r.Release(ctxT(t), retention.ScopeAgency, govOffice); !errors.Is(err, retention.ErrNoHold) {
		t.Errorf("release of no hold: %v", err)
	}
}
