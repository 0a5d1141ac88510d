package retention_test

import (
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/retention"
	"github.com/docaxis/docaxis/envelope"
)

// TestAttachmentsCountFromTheRecordedReceipt: attachment bytes are kept
// for the policy's time from delivery. The recipient's document system
// signs its receipt with a created time of its choosing (the bus accepts
// up to a day back) and publishes it itself: dating it back must not make
// the sender's attachment go before the policy says, counted from when the
// bus recorded the receipt.
func TestAttachmentsCountFromTheRecordedReceipt(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, govOffice)
	rcpt := bus.AddAgency(sonLa, sonLa)
	f := &fixture{t: t, bus: bus, admin: bus.Service.Client}
	ctx := ctxT(t)
	id, sum := f.send(sonLa, "A", "Nội dung A "+envelope.NewID())
	tr, err := f.admin.Tracking(ctx, id, sonLa)
	if err != nil {
		t.Fatal(err)
	}

	// The recipient's receipt, dated half an hour back (the test CA is
	// only an hour old).
	st := envelope.NewStatus(sonLa, govOffice, id, envelope.StateDelivered)
	st.Created = time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Millisecond)
	st.Status.Digest = tr.Digest
	raw, err := rcpt.Seal(st)
	if err != nil {
		t.Fatal(err)
	}
	recorded := time.Now()
	if _, err := bus.Client(sonLa).PublishStatus(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.WaitState(ctx, id, sonLa, envelope.StateDelivered); err != nil {
		t.Fatal(err)
	}

	clk := &clock{}
	clk.set(recorded.Add(24*time.Hour - 10*time.Minute)) // a day after the claim, not yet after the receipt
	r, err := retention.Open(ctx, f.admin, f.admin.Store(), 1, retention.WithClock(clk.Now), retention.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetPolicy(ctx, retention.Policy{Attachments: 24 * time.Hour}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	if !f.stored(sum) {
		t.Fatalf("attachment %s removed %s after the bus recorded its receipt, under a policy of a day from delivery (the receipt claimed an earlier time)",
			sum, clk.Now().Sub(recorded))
	}
}
