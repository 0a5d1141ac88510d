package attacks_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
)

// An agency writes its own received markers straight to the bucket's
// subjects ($KV.AXIS_RECEIVED.<own token>.*). NATS permissions cannot
// look at headers, so the publish may carry "Nats-Rollup: all", which a
// KV stream (AllowRollup) takes as "purge every other message of the
// stream": H99 would wipe every agency's received markers, H14's among
// them, with one publish on its own key. The bucket must refuse it and
// H14's marker must stay.
func TestReceivedMarkersCannotBeRolledUpByAnAgency(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	id, _ := a.victimSend()
	mb, err := a.client(victimRecipient).Mailbox(ctx, victimRecipient)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := mb.Fetch(ctx, 1, 10*time.Second, func(context.Context, *broker.Delivery) error { return nil }); err != nil || n != 1 {
		t.Fatalf("H14 receives: %d, %v", n, err)
	}
	victimKey := record.ReceivedKey(victimRecipient, id)
	if _, err := a.admin.ReceivedMarkers().Get(ctx, victimKey); err != nil {
		t.Fatalf("H14's received marker before the attack: %v", err)
	}

	nc, _ := a.raw(attacker)
	for _, rollup := range []string{"all", "sub"} {
		m := nats.NewMsg(record.KVSubject(record.ReceivedBucket, record.ReceivedKey(attacker, "rollup-"+rollup)))
		m.Header.Set("Nats-Rollup", rollup)
		m.Data = []byte(`{}`)
		ans, err := nc.RequestMsg(m, 10*time.Second)
		if err != nil {
			t.Fatalf("rollup %s: %v", rollup, err)
		}
		var ack struct {
			Error *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(ans.Data, &ack); err != nil {
			t.Fatalf("rollup %s: answer %q: %v", rollup, ans.Data, err)
		}
		if ack.Error == nil {
			t.Errorf("the bucket took H99's publish with Nats-Rollup: %s: %s", rollup, ans.Data)
		}
	}
	if _, err := a.admin.ReceivedMarkers().Get(ctx, victimKey); err != nil {
		t.Fatalf("H14's received marker %s after H99's rollup: %v", victimKey, err)
	}
	// H99's client still writes and reads its own markers.
	own := record.ReceivedKey(attacker, envelope.NewID())
	if _, err := a.client(attacker).ReceivedMarkers().Put(ctx, own, []byte(`{}`)); err != nil {
		t.Fatalf("H99 writes its own marker: %v", err)
	}
	if _, err := a.client(attacker).ReceivedMarkers().Get(ctx, own); err != nil {
		t.Fatalf("H99 reads its own marker: %v", err)
	}

	// A bucket an earlier version set up (rollups allowed) takes none
	// once the bus has started again.
	js := a.admin.JetStream()
	st, err := js.Stream(ctx, record.KVStream(record.ReceivedBucket))
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.AllowRollup = true
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := bus.Setup(ctx, js, bus.BusConfig{}); err != nil {
		t.Fatal(err)
	}
	if info, err := st.Info(ctx); err != nil || info.Config.AllowRollup {
		t.Fatalf("received markers' stream after Setup: AllowRollup %v, %v", info != nil && info.Config.AllowRollup, err)
	}
}
