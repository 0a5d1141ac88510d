package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
)

// The record stream takes more than the server's default 1,000 consumers
// (a country has more standalone agencies and systems than that), on a new
// bus and on one set up by an earlier version (migrated by Setup at start).
func TestRecordStreamConsumerLimit(t *testing.T) {
	b := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	js := b.Service.Client.JetStream()
	st, err := js.Stream(ctx, record.Stream)
	if err != nil {
		t.Fatal(err)
	}
	// As an earlier version left it: no limit set.
	cfg := st.CachedInfo().Config
	cfg.MaxConsumers = 0
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := bus.Setup(ctx, js, bus.BusConfig{}); err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxConsumers != bus.RecordMaxConsumers {
		t.Fatalf("record stream MaxConsumers = %d after Setup, want %d", info.Config.MaxConsumers, bus.RecordMaxConsumers)
	}
	if testing.Short() {
		return
	}
	for i := info.State.Consumers; i <= 1000; i++ {
		code := fmt.Sprintf("000.%02d.%02d.H%02d", i%100, i/100%100, 50)
		if _, err := broker.EnsureMailbox(ctx, js, code); err != nil {
			t.Fatalf("mailbox %d (%s): %v", i+1, code, err)
		}
	}
	if info, err = st.Info(ctx); err != nil || info.State.Consumers <= 1000 {
		t.Fatalf("record stream holds %d consumers (%v), want more than 1,000", info.State.Consumers, err)
	}
}
