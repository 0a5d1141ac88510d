package attacks_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
)

// An agency may pull its own mailbox (CONSUMER.MSG.NEXT), and the server
// delivers what it pulls to the request's reply subject from inside the
// account: no publish permission applies there. The agency stores bytes
// of its choice on its own mailbox subject and pulls them onto any core
// NATS subject. Every subscriber of the bus's events and internal
// requests must take such a delivery for what it is (its reply is the
// consumer's ack subject) and ignore it.

// pullOnto stores n messages of data (with header h) in code's own
// mailbox and pulls them, with code's credentials, onto subject. It
// returns once the consumer has handed them out: the server wrote them
// to subject's subscribers before anything sent afterwards.
func pullOnto(t *testing.T, b *bustest.Bus, admin *broker.Client, code, subject string, h nats.Header, data []byte, n int) {
	t.Helper()
	ctx := ctxT(t)
	nc, js := b.AgencyConnect(t, code)
	for range n {
		m := &nats.Msg{Subject: record.DocSubject(code, code), Header: h, Data: data}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("store in its own mailbox: %v", err)
		}
	}
	cons, err := admin.JetStream().Consumer(ctx, record.Stream, record.MailboxDurable(code))
	if err != nil {
		t.Fatal(err)
	}
	before, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pull := nats.NewMsg("$JS.API.CONSUMER.MSG.NEXT." + record.Stream + "." + record.MailboxDurable(code))
	pull.Reply = subject
	// A waiting request: the consumer may not have counted what was just
	// stored yet.
	pull.Data = []byte(`{"batch":` + strconv.Itoa(n) + `,"expires":60000000000}`)
	if err := nc.PublishMsg(pull); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the forged deliveries handed out", func() error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if got := info.Delivered.Consumer - before.Delivered.Consumer; got < uint64(n) {
			return errors.New("delivered " + strconv.FormatUint(got, 10) + " of " + strconv.Itoa(n))
		}
		return nil
	})
}

// H99 pulls a tracking event of its making onto G22's event subject: H14
// "delivered" G22's envelope, at a revision so high that G22 would ignore
// every genuine event after it. G22's Watch and WaitState show only what
// the bus said.
func TestPullReplyCannotForgeTrackingEvents(t *testing.T) {
	a := newArena(t)
	id, _ := a.victimSend()
	ctx := ctxT(t)
	g22 := a.client(victimSender)
	waited := make(chan *broker.Tracking, 1)
	go func() {
		tr, err := g22.WaitState(ctx, id, victimRecipient, envelope.StateDelivered)
		if err != nil {
			t.Error(err)
		}
		waited <- tr
	}()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := g22.Watch(wctx, victimSender)
	if err != nil {
		t.Fatal(err)
	}
	// G22's own raw connection sees the delivery arrive on its subject.
	seen, _ := a.raw(victimSender)
	arrived, err := seen.SubscribeSync(record.TrackEventSubject(victimSender))
	if err != nil {
		t.Fatal(err)
	}
	if err := seen.Flush(); err != nil {
		t.Fatal(err)
	}

	const forgedRev = 9007199254740991
	forged, _ := json.Marshal(broker.Tracking{Envelope: id, Sender: victimSender, Recipient: victimRecipient,
		State: envelope.StateDelivered, Revision: forgedRev})
	h := nats.Header{}
	h.Set(record.HeaderEnvelope, id)
	pullOnto(t, a.bus, a.admin, attacker, record.TrackEventSubject(victimSender), h, forged, 1)
	m, err := arrived.NextMsgWithContext(ctx)
	if err != nil {
		t.Fatalf("the forged delivery never reached G22's subject: %v", err)
	}
	t.Logf("on G22's event subject: reply %q", m.Reply)

	// Now H14 really takes the envelope.
	if got := trackReceive(t, a.client(victimRecipient), victimRecipient); len(got) != 1 || got[0] != id {
		t.Fatalf("H14's mailbox: %v", got)
	}
	real, err := a.admin.WaitState(ctx, id, victimRecipient, envelope.StateDelivered)
	if err != nil {
		t.Fatal(err)
	}
	for {
		var tr *broker.Tracking
		select {
		case tr = <-events:
		case <-ctx.Done():
			t.Fatal("Watch never showed the genuine delivery")
		}
		if tr.Envelope != id || tr.Recipient != victimRecipient || tr.State != envelope.StateDelivered {
			continue
		}
		if tr.Revision != real.Revision {
			t.Fatalf("Watch showed H14 %s at revision %d; the bus's tracking is revision %d", tr.State, tr.Revision, real.Revision)
		}
		break
	}
	if tr := <-waited; tr == nil || tr.Revision != real.Revision {
		t.Fatalf("WaitState returned %+v; the bus's tracking is revision %d", tr, real.Revision)
	}
}

// H99 pulls a quarantine sequence onto the federation's retry subject:
// the federation's entry stays where it is, to be re-driven by the
// operator only.
func TestPullReplyCannotRedriveFederationQuarantine(t *testing.T) {
	fb := bustest.StartNational(t, "VN")
	for _, code := range []string{victimSender, victimRecipient, attacker} {
		fb.AddAgency(code, cast[code])
	}
	ctx := ctxT(t)
	admin := fb.Client()
	res, err := fb.Client(victimSender).Send(ctx, envelope.New(victimSender, []string{victimRecipient}, "Liên bộ"))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := admin.WaitState(ctx, res.ID, victimRecipient, envelope.StateSent)
	if err != nil {
		t.Fatal(err)
	}
	st, err := admin.JetStream().Stream(ctx, record.Stream)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := st.GetMsg(ctx, tr.Seq)
	if err != nil {
		t.Fatal(err)
	}
	// As if forwarding the copy had failed: an entry the federation's
	// retry re-drives and removes.
	e := nats.NewMsg(record.QuarantineSubject(broker.FederationQuarantine))
	e.Data = orig.Data
	e.Header.Set(record.HeaderAgency, broker.FederationQuarantine)
	e.Header.Set(record.HeaderReason, "bus of the recipient not reachable")
	e.Header.Set(record.HeaderOriginSubject, orig.Subject)
	e.Header.Set(federation.HeaderOriginStream, record.Stream)
	e.Header.Set(record.HeaderOriginSeq, strconv.FormatUint(orig.Sequence, 10))
	ack, err := admin.JetStream().PublishMsg(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	qseq := strconv.FormatUint(ack.Sequence, 10)

	pullOnto(t, fb.Bus, admin, attacker, federation.RetrySubject, nil, []byte(qseq), 1)
	// The service takes its requests one at a time: once it has answered
	// one sent after the delivery, it has dealt with the delivery.
	if err := federation.Retry(ctx, admin, 1<<40); !errors.Is(err, federation.ErrRetry) {
		t.Fatalf("retry of no entry: %v", err)
	}
	if _, err := admin.QuarantineEntry(ctx, qseq); err != nil {
		t.Fatalf("the federation's entry after H99's delivery: %v", err)
	}
	// The operator's retry re-drives it.
	if err := federation.Retry(ctx, admin, ack.Sequence); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.QuarantineEntry(ctx, qseq); !errors.Is(err, broker.ErrNotQuarantined) {
		t.Fatalf("entry after the operator's retry: %v", err)
	}
}

// H99 pulls more judgement requests onto the rate judge's subject than it
// answers at once, each about a copy far past the record's end: were they
// taken, the bus's own processes would be told "busy" for seconds. The
// judge answers a bus process's request about H14's copy.
func TestPullReplyCannotReachRateJudge(t *testing.T) {
	a := newArena(t)
	id, _ := a.victimSend()
	seq := a.quarCopySeq(id, victimRecipient)
	pullOnto(t, a.bus, a.admin, attacker, record.RateJudgeSubject, nil, []byte(strconv.FormatUint(1<<40, 10)), 300)
	// The judge's subscription takes its messages in order: this request
	// comes after every delivery.
	resp, err := a.admin.Conn().RequestWithContext(ctxT(t), record.RateJudgeSubject, []byte(strconv.FormatUint(seq, 10)))
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Owner string `json:"owner"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &j); err != nil {
		t.Fatal(err)
	}
	if j.Error != "" || j.Owner != envelope.Token(victimRecipient) {
		t.Fatalf("the judge's answer about H14's copy #%d: %q", seq, resp.Data)
	}
}
