package retention_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/retention"
)

// unreadableCopy is the bus's own client, except that the copy at seq
// cannot be read now (a failover of the record's leader).
type unreadableCopy struct {
	*broker.Client
	seq uint64
}

func (u unreadableCopy) ReadEnvelope(ctx context.Context, seq uint64) (*broker.StoredEnvelope, error) {
	if seq == u.seq {
		return nil, errors.New("nats: timeout")
	}
	return u.Client.ReadEnvelope(ctx, seq)
}

// Bytes two documents share go only when every pair listing them is past
// its time. A copy whose attachment list cannot be read now lists nothing
// known: the plan must fail (and be made again) rather than take it for a
// copy listing nothing, which would remove bytes a pair still needs.
func TestSharedBytesKeptWhenACopyCannotBeRead(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	for _, c := range []string{govOffice, sonLa, ngheAn} {
		bus.AddAgency(c, c)
	}
	f := &fixture{t: t, bus: bus, admin: bus.Service.Client}
	ctx := ctxT(t)
	const text = "Phụ lục dùng chung cho hai văn bản"
	answered, sum := f.send(sonLa, "A", text)
	waiting, _ := f.send(ngheAn, "B", text)
	f.receive(sonLa, answered) // Nghệ An never answers B: its bytes stay
	tr, err := f.admin.Tracking(ctx, waiting, ngheAn)
	if err != nil {
		t.Fatal(err)
	}

	clk := &clock{}
	clk.set(time.Now().Add(48 * time.Hour))
	r, err := retention.Open(ctx, unreadableCopy{f.admin, tr.Seq}, f.admin.Store(), 1, retention.WithClock(clk.Now), retention.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetPolicy(ctx, retention.Policy{Attachments: 24 * time.Hour}, "test"); err != nil {
		t.Fatal(err)
	}
	_, err = r.Apply(ctx)
	if !f.stored(sum) {
		t.Fatalf("the shared attachment was removed while B's copy, which lists it and was never answered, could not be read (apply: %v)", err)
	}
	if err == nil {
		t.Error("the plan was applied without B's attachment list")
	}
	t.Log(err)
}
