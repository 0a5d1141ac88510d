package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

const (
	govOffice = "000.00.00.G22"
	ngheAn    = "000.00.00.H41"
	sonLa     = "000.00.00.H14"
)

func threeAgencies(t *testing.T) *bustest.Bus {
	tb := bustest.Start(t)
	tb.AddAgency(govOffice, "Văn phòng Chính phủ")
	tb.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	tb.AddAgency(sonLa, "UBND tỉnh Sơn La")
	return tb
}

func waitState(t *testing.T, c *broker.Client, id, recipient string, want envelope.State) *broker.Tracking {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := c.WaitState(ctx, id, recipient, want)
	if err != nil {
		t.Fatalf("wait %s for %s: %v", want, recipient, err)
	}
	return tr
}

// receiveAll drains an agency's mailbox and returns the outcomes.
func receiveAll(t *testing.T, c *broker.Client, agency string, opts ...broker.MailboxOption) []broker.Outcome {
	t.Helper()
	var outs []broker.Outcome
	opts = append(opts, broker.OnOutcome(func(o broker.Outcome) { outs = append(outs, o) }))
	mb, err := c.Mailbox(ctxT(t), agency, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Fetch(ctxT(t), 0, 500*time.Millisecond, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
		t.Fatal(err)
	}
	return outs
}
