package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
)

// A sender that asks WaitState for "delivered" after the recipient already
// went past it (delivered, then accepted) must be told it was reached: the
// publisher example waits for each recipient in turn, and a recipient that
// accepts at once is past "delivered" by the time its turn comes.
func TestReviewWaitStateSeesAStateReachedBeforeTheWait(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	sender := bus.Client(govOffice)
	rcpt := bus.Client(ngheAn)
	ctx := ctxT(t)

	res, err := sender.Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Chờ trạng thái đã qua"))
	if err != nil {
		t.Fatal(err)
	}
	if outs := receiveAll(t, rcpt, ngheAn); len(outs) != 1 || !outs[0].Verified {
		t.Fatalf("outcomes = %+v", outs)
	}
	waitState(t, sender, res.ID, ngheAn, envelope.StateDelivered)
	if _, err := rcpt.Mark(ctx, ngheAn, res.ID, envelope.StateAccepted, broker.MarkOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, sender, res.ID, ngheAn, envelope.StateAccepted)

	for name, c := range map[string]*broker.Client{"agency client": sender, "bus client": bus.Service.Client} {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		tr, err := c.WaitState(wctx, res.ID, ngheAn, envelope.StateDelivered)
		cancel()
		if err != nil {
			t.Errorf("%s: WaitState(delivered) after the pair went on to accepted: %v", name, err)
			continue
		}
		if tr.Reached(envelope.StateDelivered).IsZero() {
			t.Errorf("%s: tracking returned has no delivered event: %+v", name, tr.History)
		}
	}
}
