package broker_test

import (
	"errors"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
)

// An agency that reaches the bus only over HTTP refuses a bad envelope the
// way its mailbox would: invalid receipt to the sender, quarantine, and the
// envelope leaves its inbox listing.
func TestAcknowledgeRefusesBadEnvelope(t *testing.T) {
	bus := threeAgencies(t)
	ctx := ctxT(t)
	c := bus.Client()
	// Signed by Nghệ An's key, claiming to come from the Government Office.
	e := envelope.New(govOffice, []string{sonLa}, "Giả mạo nơi gửi")
	raw, err := envelope.Seal(e, bus.Identity(ngheAn).Key, bus.Identity(ngheAn).Chain)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := c.JetStream().Publish(ctx, record.DocSubject(sonLa, govOffice), raw)
	if err != nil {
		t.Fatal(err)
	}
	// It does not verify, so it makes no tracking state (issue 13).
	waitTracked(t, c, ack.Sequence)
	if _, err := c.Status(ctx, e.ID); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("status of a copy that does not verify: %v", err)
	}
	if page, err := c.Pending(ctx, sonLa, broker.PendingOptions{}); err != nil || len(page.Envelopes) != 1 || page.Envelopes[0].Err == nil {
		t.Fatalf("listed before the refusal: %+v, %v", page, err)
	}

	if _, err := c.Acknowledge(ctx, sonLa, e.ID); !errors.Is(err, broker.ErrUnverified) {
		t.Fatalf("acknowledge: %v", err)
	}
	if q := quarantined(t, c, sonLa); len(q) != 1 || q[0].Header.Get(record.HeaderEnvelope) != e.ID || q[0].Header.Get(record.HeaderReason) == "" {
		t.Fatalf("quarantine: %+v", q)
	}
	page, err := c.Pending(ctx, sonLa, broker.PendingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Envelopes) != 0 {
		t.Fatalf("still listed: %+v", page.Envelopes)
	}
	// The mailbox meeting it later changes nothing: same receipt, same
	// quarantine entry.
	outs := receiveAll(t, bus.Client(sonLa), sonLa)
	if len(outs) != 1 || !outs[0].Quarantined {
		t.Fatalf("mailbox: %+v", outs)
	}
	if q := quarantined(t, c, sonLa); len(q) != 1 {
		t.Fatalf("quarantined twice: %d", len(q))
	}
}
