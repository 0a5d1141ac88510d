package lease_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/lease"
	"github.com/nats-io/nats.go"
)

// Two processes of one duty: one runs it; when it stops, the other takes
// over without waiting for the lease to expire.
func TestElectionHandsOver(t *testing.T) {
	_, js := bustest.Start(t, bustest.WithoutFiles()).Connect(t)
	ctx := bustest.Context(t, time.Minute)
	var running [2]atomic.Bool
	var cancels [2]context.CancelFunc
	var dones [2]chan struct{}
	for i := range 2 {
		el, err := lease.New(ctx, js, "test-duty", lease.Config{TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		cancels[i], dones[i] = cancel, make(chan struct{})
		go func() {
			defer close(dones[i])
			el.Run(rctx, func(ctx context.Context) {
				running[i].Store(true)
				<-ctx.Done()
				running[i].Store(false)
			})
		}()
	}
	holder := -1
	bustest.Eventually(t, 30*time.Second, "one process runs the duty", func() error {
		switch {
		case running[0].Load() && running[1].Load():
			t.Fatal("both processes run the duty")
		case running[0].Load():
			holder = 0
		case running[1].Load():
			holder = 1
		default:
			return errors.New("neither runs it")
		}
		return nil
	})
	other := 1 - holder
	cancels[holder]()
	<-dones[holder]
	// The TTL is a minute: taking over within the wait below is the
	// release at stop, not the expiry.
	bustest.Eventually(t, 30*time.Second, "the other process takes over", func() error {
		if !running[other].Load() {
			return errors.New("not yet")
		}
		return nil
	})
	cancels[other]()
	<-dones[other]
}

func TestAsk(t *testing.T) {
	nc, _ := bustest.Start(t, bustest.WithoutFiles()).Connect(t)
	never := func() bool { return false }

	t.Run("the holder answers", func(t *testing.T) {
		sub, err := nc.Subscribe("test.ask.a", func(m *nats.Msg) { _ = m.Respond(append([]byte("re: "), m.Data...)) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		resp, err := lease.Ask(bustest.Context(t, 30*time.Second), nc, "test.ask.a", []byte("q"), never)
		if err != nil || string(resp.Data) != "re: q" {
			t.Fatalf("answer %v, %v", resp, err)
		}
	})

	t.Run("through a handover", func(t *testing.T) {
		go func() {
			time.Sleep(300 * time.Millisecond) // nobody answers meanwhile
			sub, err := nc.Subscribe("test.ask.b", func(m *nats.Msg) { _ = m.Respond([]byte("new holder")) })
			if err == nil {
				t.Cleanup(func() { _ = sub.Unsubscribe() })
			}
		}()
		resp, err := lease.Ask(bustest.Context(t, 30*time.Second), nc, "test.ask.b", nil, never)
		if err != nil || string(resp.Data) != "new holder" {
			t.Fatalf("answer %v, %v", resp, err)
		}
	})

	t.Run("this process took the duty", func(t *testing.T) {
		var here atomic.Bool
		time.AfterFunc(200*time.Millisecond, func() { here.Store(true) })
		_, err := lease.Ask(bustest.Context(t, 30*time.Second), nc, "test.ask.c", nil, here.Load)
		if !errors.Is(err, lease.ErrHeldHere) {
			t.Fatalf("err = %v, want %v", err, lease.ErrHeldHere)
		}
	})

	t.Run("nobody holds it", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := lease.Ask(ctx, nc, "test.ask.d", nil, never)
		if !errors.Is(err, lease.ErrNoHolder) {
			t.Fatalf("err = %v, want %v", err, lease.ErrNoHolder)
		}
	})
}
