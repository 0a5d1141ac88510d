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
	"github.com/nats-io/nats.go/jetstream"
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

// Setup asks again, for every stream and bucket, after what a cluster that
// has just started answers for a moment: "no suitable peers for placement,
// peer offline" while the meta leader has not yet seen every peer online
// (CI saw `set up bucket AXIS_FILEREFS: ... peer offline` fail a bench
// against a new cluster), and "error creating store" when two processes
// set a stream up at once. What the request itself is refused for is not
// asked again. (A one-off offline peer cannot be made here on demand: a
// cluster that has seen all its peers places a bucket with one of them
// down.)
func TestSetupAsksAgainWhileAClusterForms(t *testing.T) {
	for _, tc := range []struct {
		code jetstream.ErrorCode
		want bool
	}{
		{10005, true},  // no suitable peers for placement
		{10008, true},  // JetStream system temporarily unavailable
		{10049, true},  // error creating store for stream
		{10058, false}, // stream name already in use with a different configuration
		{10052, false}, // replicas > 1 not supported in non-clustered mode
	} {
		err := fmt.Errorf("set up bucket X: %w", &jetstream.APIError{Code: 500, ErrorCode: tc.code, Description: "test"})
		if got := bus.SetupTransient(err); got != tc.want {
			t.Errorf("err_code %d: asked again = %v, want %v", tc.code, got, tc.want)
		}
	}
}
