package audit_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/audit/audittest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

func TestReplayVerifiesAndLinks(t *testing.T) {
	ab := startAuditBus(t)
	ab.send(govOffice, ngheAn, sonLa)
	ab.send(ngheAn, govOffice)
	ab.checkpoint()
	var progress []uint64
	recs, st := replayAll(t, ab.reader(), audit.Query{Progress: func(done, total uint64) { progress = append(progress, done, total) }})
	if len(recs) != 3 || st.Verified != 3 || st.Read != 3 {
		t.Fatalf("records %d, stats %+v", len(recs), st)
	}
	for i, r := range recs {
		if !r.Verified || r.Chain != audit.ChainLinked || r.Seq != uint64(i+1) {
			t.Errorf("seq %d: verified %v chain %s reason %s", r.Seq, r.Verified, r.Chain, r.Reason)
		}
	}
	if r := recs[0]; r.Type != "document" || r.From != govOffice || r.To != ngheAn || r.Signer == "" || r.Created.IsZero() {
		t.Errorf("first record = %+v", r)
	}
	if !slices.Equal(progress[len(progress)-2:], []uint64{3, 3}) {
		t.Errorf("progress = %v, want to end with 3 of 3", progress)
	}
}

// fn's error stops the replay at once and is returned.
func TestReplayStopsOnCallbackError(t *testing.T) {
	ab := startAuditBus(t)
	for range 20 {
		ab.send(govOffice, ngheAn)
	}
	stop := errors.New("enough")
	n := 0
	_, err := ab.reader().Replay(ctxT(t), audit.Query{}, func(*audit.Record) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("err %v after %d records", err, n)
	}
}

// A record deleted from the stream behind the bus's back shows as missing,
// named by its sequence, from the chain's link.
func TestReplayNamesDeletedRecord(t *testing.T) {
	ab := startAuditBus(t)
	for range 3 {
		ab.send(govOffice, ngheAn)
	}
	ab.checkpoint()
	s, err := ab.js.Stream(ctxT(t), record.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctxT(t), 2); err != nil {
		t.Fatal(err)
	}
	recs, st := replayAll(t, ab.reader(), audit.Query{})
	if len(recs) != 3 || st.Missing != 1 || st.Verified != 2 {
		t.Fatalf("stats %+v", st)
	}
	if r := recs[1]; r.Seq != 2 || r.Chain != audit.ChainMissing || r.Verified || !strings.Contains(r.Reason, "seq 2") {
		t.Fatalf("record 2 = %+v", r)
	}
}

func TestReplayAcrossRestart(t *testing.T) {
	ab := startAuditBus(t)
	ab.send(govOffice, ngheAn, sonLa)
	ab.checkpoint()
	before := ab.chainer.Head()
	ab.restart()
	if h := ab.chainer.Head(); h != before {
		t.Fatalf("head after restart %+v, before %+v", h, before)
	}
	ab.send(sonLa, govOffice)
	ab.send(ngheAn, sonLa)
	ab.checkpoint()
	recs, st := replayAll(t, ab.reader(), audit.Query{})
	if len(recs) != 4 || st.Verified != 4 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	for _, r := range recs {
		if r.Chain != audit.ChainLinked {
			t.Errorf("seq %d: chain %s %s", r.Seq, r.Chain, r.Reason)
		}
	}
	exportAndVerify(t, ab, audit.ExportOptions{})
}

// The replay of a range in the middle of a long history starts there: the
// server seeks to the start time, nothing before it is fetched.
func TestReplayMiddleOfLongHistory(t *testing.T) {
	ab := startAuditBus(t)
	c := ab.Client(govOffice, ngheAn)
	ctx := ctxT(t)
	sendN := func(n int) {
		for range n {
			if _, err := c.Send(ctx, envelope.New(govOffice, []string{ngheAn}, "lịch sử")); err != nil {
				t.Fatal(err)
			}
		}
	}
	sendN(400)
	time.Sleep(20 * time.Millisecond)
	since := time.Now()
	sendN(7)
	time.Sleep(20 * time.Millisecond)
	until := time.Now()
	sendN(100)
	ab.checkpoint()
	recs, st := replayAll(t, ab.reader(), audit.Query{Since: since, Until: until})
	if len(recs) != 7 || st.Verified != 7 {
		t.Fatalf("stats %+v", st)
	}
	if recs[0].Seq != 401 || recs[6].Seq != 407 {
		t.Fatalf("seqs %d..%d, want 401..407", recs[0].Seq, recs[6].Seq)
	}
	// 7 in range plus the first after it, which ends the replay.
	if st.Read > 8 {
		t.Fatalf("fetched %d records for a range of 7", st.Read)
	}
	exportAndVerify(t, ab, audit.ExportOptions{Query: audit.Query{Since: since, Until: until}})
}

func TestReplayByAgencyBothDirections(t *testing.T) {
	ab := startAuditBus(t)
	ctx := ctxT(t)
	ab.send(govOffice, ngheAn)        // not sonLa's
	ab.send(govOffice, ngheAn, sonLa) // to sonLa (and a copy to ngheAn)
	id := ab.send(sonLa, govOffice)   // from sonLa
	ab.send(ngheAn, govOffice)        // not sonLa's
	c := ab.Client(govOffice)
	mb, err := c.Mailbox(ctx, govOffice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Fetch(ctx, 0, 300*time.Millisecond, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Mark(ctx, govOffice, id, envelope.StateAccepted, broker.MarkOptions{}); err != nil {
		t.Fatal(err)
	}
	ab.checkpoint()
	all, _ := replayAll(t, ab.reader(), audit.Query{})
	var want []uint64
	for _, r := range all {
		if r.From == sonLa || r.To == sonLa {
			want = append(want, r.Seq)
		}
	}
	got, st := replayAll(t, ab.reader(), audit.Query{Agency: sonLa})
	var seqs []uint64
	dirs := map[string]bool{}
	for _, r := range got {
		seqs = append(seqs, r.Seq)
		if !r.Verified {
			t.Errorf("seq %d not verified: %s", r.Seq, r.Reason)
		}
		dirs[r.Type+" from "+map[bool]string{true: "sonLa", false: "other"}[r.From == sonLa]] = true
	}
	if !slices.Equal(seqs, want) || st.Read != uint64(len(want)) {
		t.Fatalf("sonLa's records %v (read %d), want %v", seqs, st.Read, want)
	}
	// documents both ways, and statuses both ways (receipts sent to sonLa
	// by govOffice's mailbox, accepted by govOffice)
	for _, d := range []string{"document from sonLa", "document from other", "status from other"} {
		if !dirs[d] {
			t.Errorf("no %s in %v", d, dirs)
		}
	}
	exportAndVerify(t, ab, audit.ExportOptions{Query: audit.Query{Agency: sonLa}})
}

// Replays read through ephemeral consumers: live durable consumers do not
// move.
func TestReplayLeavesLiveConsumersAlone(t *testing.T) {
	ab := startAuditBus(t)
	ctx := ctxT(t)
	ab.send(govOffice, ngheAn)
	ab.send(govOffice, ngheAn)
	if _, err := ab.Client(ngheAn).Mailbox(ctx, ngheAn); err != nil {
		t.Fatal(err)
	}
	info := func() *jetstream.ConsumerInfo {
		c, err := ab.js.Consumer(ctx, record.Stream, record.MailboxDurable(ngheAn))
		if err != nil {
			t.Fatal(err)
		}
		i, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	// The consumer counts new copies a moment after they are stored.
	before := info()
	for i := 0; i < 50 && before.NumPending != 2; i++ {
		time.Sleep(20 * time.Millisecond)
		before = info()
	}
	replayAll(t, ab.reader(), audit.Query{})
	replayAll(t, ab.reader(), audit.Query{Agency: ngheAn})
	after := info()
	if before.NumPending != after.NumPending || before.Delivered != after.Delivered || before.AckFloor != after.AckFloor || after.NumPending != 2 {
		t.Fatalf("mailbox consumer moved: before %+v/%+v, after %+v/%+v", before.Delivered, before.NumPending, after.Delivered, after.NumPending)
	}
}

func exportAndVerify(t *testing.T, ab *auditBus, o audit.ExportOptions) *audit.Report {
	t.Helper()
	var buf strings.Builder
	m, err := ab.reader().Export(ctxT(t), o, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Covered {
		t.Fatalf("export not covered: %v", m.Warnings)
	}
	b := []byte(buf.String())
	rep, err := verifyBytes(b, audit.VerifyOptions{RequireCoverage: true})
	if err != nil {
		t.Fatalf("verify: %v (notes %v)", err, rep.Notes)
	}
	if rep.Records != len(m.Records) || rep.Verified != rep.Records {
		t.Fatalf("report %+v", rep)
	}
	return rep
}

// A record removed together with its link (stream AXIS_AUDIT written again
// without it): the next link's prev no longer matches, and the replay
// must name the break, fail the record after it and count it.
func TestReplayNamesBrokenChain(t *testing.T) {
	ab := startAuditBus(t)
	for range 3 {
		ab.send(govOffice, ngheAn)
	}
	ab.checkpoint()
	recs, st := replayAll(t, ab.reader(), audit.Query{})
	if len(recs) != 3 || st.Failed != 0 || st.Broken != 0 || st.CoveredThrough != 3 || len(st.ChainNotes) != 0 {
		t.Fatalf("untouched: %d records, stats %+v", len(recs), *st)
	}
	ab.stopChainer()
	if err := audittest.CutRecord(ctxT(t), ab.js0(t), 2); err != nil {
		t.Fatal(err)
	}
	recs, st = replayAll(t, ab.reader(), audit.Query{})
	if len(recs) != 2 || st.Broken != 1 || st.Failed != 1 || len(st.ChainNotes) != 1 {
		t.Fatalf("record 2 and its link removed: %d records, stats %+v", len(recs), *st)
	}
	if r := recs[1]; r.Seq != 3 || r.Verified || r.Chain != audit.ChainBroken || !errors.Is(r.Err(), audit.ErrChainBroken) {
		t.Errorf("seq %d: verified %v, chain %s, reason %q; want seq 3 failed as %s", r.Seq, r.Verified, r.Chain, r.Reason, audit.ChainBroken)
	}
	t.Log(st.ChainNotes[0])
}

// The last record cut with its link: no link is left whose prev shows it,
// but the checkpoint the chainer stored after that link signs it, and the
// replay names the chain before it as cut short.
func TestReplayNamesCutAtTheEnd(t *testing.T) {
	ab := startAuditBus(t)
	for range 3 {
		ab.send(govOffice, ngheAn)
	}
	ab.checkpoint()
	ab.stopChainer()
	if err := audittest.CutRecord(ctxT(t), ab.js0(t), 3); err != nil {
		t.Fatal(err)
	}
	recs, st := replayAll(t, ab.reader(), audit.Query{})
	if len(recs) != 2 || st.Broken != 1 || !slices.ContainsFunc(st.ChainNotes, func(n string) bool {
		return strings.Contains(n, "for seq 3, but the chain before it ends at seq 2")
	}) {
		t.Fatalf("record 3 and its link removed: %d records, stats %+v", len(recs), *st)
	}
	t.Log(st.ChainNotes)
}
