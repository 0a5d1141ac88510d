package attacks_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
)

// The rate gate's judge answers the bus's own processes on
// record.RateJudgeSubject. An agency may neither ask it about a copy (the
// verdict of another's mail) nor answer in its place (hand a recipient's
// bus process the verdict it likes), even while a second bus process
// forwards every check there.
func TestRateJudgeOutOfAgenciesReach(t *testing.T) {
	a := newArena(t)
	l := broker.DefaultLimits
	l.PublishRate = 50
	if err := a.bus.Service.Client.SetLimits(ctxT(t), l); err != nil {
		t.Fatal(err)
	}
	// A second process of the bus, which asks the judge (the first).
	a.bus.StartProcess(t)

	id, _ := a.victimSend()
	seq := a.quarCopySeq(id, victimRecipient)

	// Asking about the victim's copy.
	a.permRefused(t, record.RateJudgeSubject, []byte(strconv.FormatUint(seq, 10)))

	// Answering in the judge's place: refused, and nothing reaches it.
	evil, v := a.raw(attacker)
	heard := make(chan *nats.Msg, 16)
	if _, err := evil.Subscribe(record.RateJudgeSubject, func(m *nats.Msg) {
		heard <- m
		_ = m.Respond([]byte(`{"refused":true,"reason":"forged"}`))
	}); err != nil {
		t.Fatal(err)
	}
	quarWaitViolation(t, v, record.RateJudgeSubject)

	// The victim's mail is judged by the bus alone, through either process.
	rcpt := a.client(victimRecipient)
	for rcpt.Limits().PublishRate != l.PublishRate {
		select {
		case <-ctxT(t).Done():
			t.Fatal("the rate never reached the recipient's side")
		case <-time.After(10 * time.Millisecond):
		}
	}
	mb, err := rcpt.Mailbox(ctxT(t), victimRecipient)
	if err != nil {
		t.Fatal(err)
	}
	n, err := mb.Fetch(ctxT(t), 1, 10*time.Second, func(context.Context, *broker.Delivery) error { return nil })
	if err != nil || n != 1 {
		t.Fatalf("the victim's copy: %d handed over, %v", n, err)
	}
	select {
	case m := <-heard:
		t.Fatalf("the attacker heard a judgement request: %q", m.Data)
	default:
	}
}
