package broker_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
)

func TestPendingAndAcknowledge(t *testing.T) {
	bus := bustest.Start(t)
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	bus.AddAgency(sonLa, "UBND tỉnh Sơn La")
	sender := bus.Client(govOffice)
	rcpt := bus.Client(ngheAn)
	ctx := ctxT(t)

	var ids []string
	for i, subject := range []string{"Công văn một", "Công văn hai", "Công văn ba"} {
		content := []byte("nội dung " + subject)
		e := envelope.New(govOffice, []string{ngheAn}, subject)
		files := []broker.File{{Name: "cv.txt", Reader: bytes.NewReader(content), Size: int64(len(content))}}
		if i == 2 {
			files = nil
		}
		res, err := sender.Send(ctx, e, files...)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}

	// Listed before the tracker has necessarily seen them: the listing
	// reads the record, not the tracking.
	page, err := rcpt.Pending(ctx, ngheAn, broker.PendingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(page); !equal(got, ids) {
		t.Fatalf("pending = %v, want %v", got, ids)
	}
	for _, se := range page.Envelopes {
		if !se.Verified() || se.Recipient() != ngheAn || se.Envelope.From != govOffice {
			t.Fatalf("pending copy %+v err %v", se, se.Err)
		}
	}
	if other, err := bus.Client(sonLa).Pending(ctx, sonLa, broker.PendingOptions{}); err != nil || len(other.Envelopes) != 0 {
		t.Fatalf("pending of an agency with no mail = %v, %v", other, err)
	}
	paged, err := rcpt.Pending(ctx, ngheAn, broker.PendingOptions{Limit: 2})
	if err != nil || len(paged.Envelopes) != 2 || !paged.More {
		t.Fatalf("limited listing = %+v, %v", paged, err)
	}

	// Acknowledge the first: receipt, tracking delivered, gone from the listing.
	ack, err := rcpt.Acknowledge(ctx, ngheAn, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if ack.Duplicate || ack.Digest == "" || ack.Envelope.Subject != "Công văn một" {
		t.Fatalf("ack = %+v", ack)
	}
	waitState(t, sender, ids[0], ngheAn, envelope.StateDelivered)
	again, err := rcpt.Acknowledge(ctx, ngheAn, ids[0])
	if err != nil || !again.Duplicate {
		t.Fatalf("second ack = %+v, %v", again, err)
	}
	page, err = rcpt.Pending(ctx, ngheAn, broker.PendingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(page); !equal(got, ids[1:]) {
		t.Fatalf("pending after ack = %v, want %v", got, ids[1:])
	}
	if page.Floor < ack.Seq {
		t.Fatalf("floor %d is before the acknowledged copy #%d", page.Floor, ack.Seq)
	}

	// The Go mailbox then treats the acknowledged one as already handled
	// and hands over the others.
	outs := receiveAll(t, rcpt, ngheAn)
	if len(outs) != 3 || !outs[0].Duplicate || outs[0].ID != ids[0] || !outs[1].Verified || !outs[2].Verified {
		t.Fatalf("mailbox outcomes = %+v", outs)
	}
	page, err = rcpt.Pending(ctx, ngheAn, broker.PendingOptions{})
	if err != nil || len(page.Envelopes) != 0 {
		t.Fatalf("pending after the mailbox ran = %+v, %v", page, err)
	}
	if ack, err := rcpt.Acknowledge(ctx, ngheAn, ids[1]); err != nil || !ack.Duplicate {
		t.Fatalf("ack of an envelope the mailbox handled = %+v, %v", ack, err)
	}

	// Only a recipient holding its key acknowledges.
	tests := []struct {
		name   string
		c      *broker.Client
		agency string
		id     string
		want   error
	}{
		{"not a recipient", bus.Client(sonLa), sonLa, ids[0], broker.ErrNotFound},
		{"no key held", sender, ngheAn, ids[0], nil},
		{"unknown envelope", rcpt, ngheAn, envelope.NewID(), broker.ErrNotFound},
		{"not an id", rcpt, ngheAn, "../etc", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.c.Acknowledge(ctx, tc.agency, tc.id)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}

	// Reading a copy back by sequence.
	se, err := sender.ReadEnvelope(ctx, ack.Seq)
	if err != nil || !se.Verified() || se.Envelope.ID != ids[0] {
		t.Fatalf("read envelope = %+v, %v", se, err)
	}
	if _, err := sender.ReadEnvelope(ctx, 1<<40); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("read missing envelope: %v", err)
	}
}

func pendingIDs(p *broker.PendingResult) []string {
	var out []string
	for _, se := range p.Envelopes {
		out = append(out, se.Envelope.ID)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A copy is acknowledged by id (as the HTTP API does with the bus's own
// client) and the agency, on its own credentials, marks it accepted, then
// processing, one right after the other, while the bus's tracker lags
// (stopped during each step, started again 300 ms later). With
// WaitDelivered and MarkOptions.Wait each step is judged from the state
// the one before it left; without them the first mark finds the pair
// still sent.
func TestAcknowledgeAndMarkWaitForTheTracker(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	ctx := ctxT(t)
	res, err := bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Về việc lập kế hoạch"))
	if err != nil {
		t.Fatal(err)
	}
	rcpt, byID := bus.Client(ngheAn), bus.Client(govOffice, ngheAn)
	if _, err := rcpt.WaitState(ctx, res.ID, ngheAn, envelope.StateSent); err != nil {
		t.Fatal(err)
	}
	const wait = 10 * time.Second
	steps := []struct {
		name string
		do   func() error
	}{
		{"acknowledge", func() error {
			_, err := byID.Acknowledge(ctx, ngheAn, res.ID, broker.WaitDelivered(wait))
			return err
		}},
		{"accepted", func() error {
			_, err := rcpt.Mark(ctx, ngheAn, res.ID, envelope.StateAccepted, broker.MarkOptions{Wait: wait})
			return err
		}},
		{"processing", func() error {
			_, err := rcpt.Mark(ctx, ngheAn, res.ID, envelope.StateProcessing, broker.MarkOptions{Wait: wait})
			return err
		}},
	}
	for _, step := range steps {
		restarted := bus.LagTracker(t, 300*time.Millisecond)
		err := step.do()
		restarted()
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
	}
	tr, err := rcpt.Tracking(ctx, res.ID, ngheAn)
	if err != nil || tr.State != envelope.StateProcessing {
		t.Fatalf("tracking after the steps: %+v, %v", tr, err)
	}
}
