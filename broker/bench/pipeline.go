package bench

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// pipeline is the round trip raw JetStream and the bare prototype of
// BenchmarkCeiling share: envelopes published without waiting, each
// consumed and answered with a receipt published back, each receipt
// consumed by the sender's side. What differs is the work at each end.
type pipeline struct {
	stream   string                                // its subjects: <lower-case stream>.env and .rcpt
	envelope func(i int) ([]byte, error)           // the i-th envelope
	answer   func(m jetstream.Msg) ([]byte, error) // the receipt of an envelope
	receipt  func(m jetstream.Msg) error           // the sender's work on a receipt
}

// run sends n envelopes through p on js and returns the time from the
// first publish until the n-th receipt is consumed and every publish,
// the ends' own included, is stored.
func (p pipeline) run(ctx context.Context, js jetstream.JetStream, n, replicas int) (time.Duration, error) {
	prefix := strings.ToLower(p.stream)
	envSubj, rcptSubj := prefix+".env", prefix+".rcpt"
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: p.stream, Subjects: []string{prefix + ".>"}, Storage: jetstream.FileStorage, Replicas: max(replicas, 1)}); err != nil {
		return 0, err
	}
	defer js.DeleteStream(context.WithoutCancel(ctx), p.stream)
	mk := func(name, subj string) (jetstream.Consumer, error) {
		return js.CreateOrUpdateConsumer(ctx, p.stream, jetstream.ConsumerConfig{Durable: name, FilterSubject: subj, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000})
	}
	envCons, err := mk("env", envSubj)
	if err != nil {
		return 0, err
	}
	rcptCons, err := mk("rcpt", rcptSubj)
	if err != nil {
		return 0, err
	}
	// A loaded machine stalls the publisher longer than the default
	// 200 ms: that is a slower figure, not a failed run.
	stallWait := jetstream.WithStallWait(time.Minute)
	failed := make(chan error, 1)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	c1, err := envCons.Consume(func(m jetstream.Msg) {
		rcpt, err := p.answer(m)
		if err == nil {
			_, err = js.PublishAsync(rcptSubj, rcpt, stallWait)
		}
		if err != nil {
			fail(fmt.Errorf("bench %s: answer an envelope: %w", p.stream, err))
			return
		}
		_ = m.Ack()
	}, jetstream.PullMaxMessages(512))
	if err != nil {
		return 0, err
	}
	defer c1.Stop()
	var got atomic.Int64
	done := make(chan struct{})
	c2, err := rcptCons.Consume(func(m jetstream.Msg) {
		if err := p.receipt(m); err != nil {
			fail(fmt.Errorf("bench %s: take a receipt: %w", p.stream, err))
			return
		}
		_ = m.Ack()
		if got.Add(1) == int64(n) {
			close(done)
		}
	}, jetstream.PullMaxMessages(512))
	if err != nil {
		return 0, err
	}
	defer c2.Stop()
	start := time.Now()
	for i := 0; i < n; i++ {
		env, err := p.envelope(i)
		if err != nil {
			return 0, err
		}
		if _, err := js.PublishAsync(envSubj, env, stallWait); err != nil {
			return 0, err
		}
	}
	select {
	case <-done:
	case err := <-failed:
		return 0, err
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("bench %s: %d of %d", p.stream, got.Load(), n)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return 0, fmt.Errorf("bench %s: publishes not stored", p.stream)
	}
	return time.Since(start), nil
}
