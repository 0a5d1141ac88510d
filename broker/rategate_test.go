package broker_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// setRate sets the bus's publish rate and waits until client c applies it.
func setRate(t *testing.T, svc *bus.Service, rate float64, clients ...*broker.Client) {
	t.Helper()
	l := broker.DefaultLimits
	l.PublishRate = rate
	if err := svc.Client.SetLimits(ctxT(t), l); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		for c.Limits().PublishRate != rate {
			select {
			case <-ctxT(t).Done():
				t.Fatal("limits never reached the client")
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// flood publishes n signed envelopes from `from` to `to` with a plain
// JetStream publish, as a client that skips its own rate limiter would,
// and returns their ids and the record times of the first and last copy.
func flood(t *testing.T, c *broker.Client, id *signing.Identity, from, to string, n int) (ids []string, first, last time.Time) {
	t.Helper()
	var seqs []uint64
	for i := 0; i < n; i++ {
		e := envelope.New(from, []string{to}, "Dồn dập")
		raw, err := id.Seal(e)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(record.DocSubject(to, from))
		m.Data = raw
		m.Header.Set(jetstream.MsgIDHeader, e.ID+"."+envelope.Token(to))
		ack, err := c.JetStream().PublishMsg(ctxT(t), m)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
		seqs = append(seqs, ack.Sequence)
	}
	return ids, recordMsg(t, c, seqs[0]).Time, recordMsg(t, c, seqs[len(seqs)-1]).Time
}

// A sender that publishes far over the rate, past its own client: the bus
// judges every copy by the time it recorded it, the recipient's side hands
// over no more than the rate allows, the rest is refused (invalid receipt,
// quarantine by the bus) and hidden from the HTTP inbox; another sender's
// envelope is delivered as usual.
func TestPublishRateEnforcedByTheBus(t *testing.T) {
	bus := threeAgencies(t)
	admin := bus.Client()
	rcpt := bus.Client(sonLa)
	const rate = 2.0
	setRate(t, bus.Service, rate, admin, rcpt)
	ids, first, last := flood(t, admin, bus.Identity(ngheAn), ngheAn, sonLa, 30)
	legit, err := bus.Client(govOffice).Send(ctxT(t), envelope.New(govOffice, []string{sonLa}, "Văn bản thường"))
	if err != nil {
		t.Fatal(err)
	}
	// The bucket starts with twice the rate and refills with record time.
	bound := int(2*rate + rate*last.Sub(first).Seconds())

	// The HTTP inbox (Pending) does not list what the bus refused, and
	// acknowledging it is refused.
	pend, err := admin.Pending(ctxT(t), sonLa, broker.PendingOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, se := range pend.Envelopes {
		listed[se.Envelope.ID] = true
	}
	if !listed[legit.ID] || len(pend.Envelopes) > bound+1 || len(pend.Envelopes) < 2 {
		t.Fatalf("pending lists %d envelopes (legit listed: %v), want the legit one and 1 to %d of the flood", len(pend.Envelopes), listed[legit.ID], bound)
	}
	if listed[ids[len(ids)-1]] {
		t.Fatalf("the last copy of the flood is deliverable")
	}
	if _, err := admin.Acknowledge(ctxT(t), sonLa, ids[len(ids)-1]); !errors.Is(err, broker.ErrRateLimited) {
		t.Fatalf("acknowledge a refused copy: %v", err)
	}

	outs := receiveAll(t, rcpt, sonLa)
	handed, refused := 0, 0
	for _, o := range outs {
		switch {
		case o.ID == legit.ID:
			if !o.Verified {
				t.Fatalf("the legit envelope: %+v", o)
			}
		case o.Verified:
			handed++
		case o.Quarantined && strings.Contains(o.Error, broker.ErrRateLimited.Error()):
			refused++
		default:
			t.Fatalf("outcome %+v", o)
		}
	}
	if handed < 1 || handed > bound || handed+refused != len(ids) {
		t.Fatalf("handed over %d, refused %d of %d (at most %d within the rate)", handed, refused, len(ids), bound)
	}
	t.Logf("flood of %d over %s: %d handed over (at most %d), %d refused", len(ids), last.Sub(first), handed, bound, refused)
	q, err := admin.QuarantineList(ctxT(t), sonLa)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != refused {
		t.Fatalf("%d quarantined, %d refused", len(q), refused)
	}
	for _, e := range q {
		if !strings.Contains(e.Reason, "publish rate") || e.OriginSeq == 0 {
			t.Fatalf("entry %+v", e)
		}
	}
	tr := waitState(t, admin, ids[len(ids)-1], sonLa, envelope.StateInvalid)
	if !strings.Contains(tr.Reason, "publish rate") {
		t.Fatalf("the sender hears %q", tr.Reason)
	}
	// Once the sender keeps to the rate its envelopes go through again.
	time.Sleep(time.Second) // record time for the bucket to refill
	again, err := bus.Client(ngheAn).Send(ctxT(t), envelope.New(ngheAn, []string{sonLa}, "Đúng nhịp"))
	if err != nil {
		t.Fatal(err)
	}
	if outs := receiveAll(t, rcpt, sonLa); len(outs) != 1 || outs[0].ID != again.ID || !outs[0].Verified {
		t.Fatalf("within the rate: %+v", outs)
	}
}

// Without a rate the gate refuses nothing and recipients ask nothing.
func TestNoPublishRateNoVerdicts(t *testing.T) {
	bus := threeAgencies(t)
	admin := bus.Client()
	ids, _, _ := flood(t, admin, bus.Identity(ngheAn), ngheAn, sonLa, 10)
	outs := receiveAll(t, bus.Client(sonLa), sonLa)
	if len(outs) != len(ids) {
		t.Fatalf("outcomes %+v", outs)
	}
	for _, o := range outs {
		if !o.Verified {
			t.Fatalf("outcome %+v", o)
		}
	}
}

// The verdicts outlive a restart of the bus: a recipient that was away
// during the flood gets no more of it afterwards than the rate allowed.
func TestPublishRateVerdictsSurviveRestart(t *testing.T) {
	bus := threeAgencies(t)
	admin := bus.Client()
	setRate(t, bus.Service, 1, admin)
	ids, first, last := flood(t, admin, bus.Identity(ngheAn), ngheAn, sonLa, 12)
	waitRefused(t, admin, ids[len(ids)-1])
	restartWithinRate(t, bus, len(ids), first, last, "after a restart")
}

// A process that judged copies past the floor it recorded (a crash, or a
// floor write that failed) leaves its refusals behind: the next one judges
// those copies again with every sender's bucket full, and must not let
// through what was refused.
func TestPublishRateRefusalsStandWhenJudgedAgain(t *testing.T) {
	bus := threeAgencies(t)
	admin := bus.Client()
	setRate(t, bus.Service, 1, admin)
	ids, first, last := flood(t, admin, bus.Identity(ngheAn), ngheAn, sonLa, 12)
	// Every refusal written: the graceful stop writes those in hand.
	waitRefused(t, admin, ids[len(ids)-1])
	bus.Service.Stop()
	q, err := admin.QuarantineList(ctxT(t), sonLa)
	if err != nil {
		t.Fatal(err)
	}
	var refused []uint64
	for _, e := range q {
		refused = append(refused, e.OriginSeq)
	}
	slices.Sort(refused)
	if len(refused) < 6 {
		t.Fatalf("%d of %d copies refused; the flood should have been refused mostly", len(refused), len(ids))
	}
	// The floor as a crash would leave it: behind three of the refusals.
	kv, err := admin.JetStream().KeyValue(ctxT(t), record.RateBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctxT(t), "floor", []byte(strconv.FormatUint(refused[2], 10))); err != nil {
		t.Fatal(err)
	}
	restartWithinRate(t, bus, len(ids), first, last, "judged again after a crash")
}

// waitRefused waits until the gate has judged the copy of envelope id for
// sonLa and refused it: its entry is in the quarantine.
func waitRefused(t *testing.T, c *broker.Client, id string) {
	t.Helper()
	for {
		q, err := c.QuarantineList(ctxT(t), sonLa)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(q, func(e broker.Quarantined) bool { return e.Envelope == id }) {
			return
		}
		select {
		case <-ctxT(t).Done():
			t.Fatalf("the gate never refused %s", id)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// restartWithinRate restarts bus and checks that sonLa, receiving the
// flood of n copies sent from first to last, is handed no more than the
// rate of 1/s allowed.
func restartWithinRate(t *testing.T, bus *bustest.Bus, n int, first, last time.Time, what string) {
	t.Helper()
	bus.Restart()
	rcpt := bus.Client(sonLa)
	setRate(t, bus.Service, 1, rcpt)
	bound := int(2 + last.Sub(first).Seconds())
	handed := 0
	for _, o := range receiveAll(t, rcpt, sonLa) {
		if o.Verified {
			handed++
		}
	}
	if handed < 1 || handed > bound {
		t.Fatalf("%s: %d of %d handed over, at most %d within the rate", what, handed, n, bound)
	}
}
