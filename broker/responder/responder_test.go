package responder_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/responder"
	"github.com/docaxis/docaxis/storage/natstest"
	"github.com/nats-io/nats.go"
)

// A request from another connection right after Listen is answered, and
// one right after Stop or Drain hears "no responders", never its timeout.
// The timeout is long so that a request reaching a gone subscription
// shows as the wrong error, not as a slow test.
func TestRequestsRightAfterListenAndStop(t *testing.T) {
	url, _ := natstest.Start(t)
	svc, _ := natstest.Connect(t, url)
	// A busy connection: the UNSUB waits behind the publishes it buffered.
	busy := func() {
		for i := 0; i < 200; i++ {
			_ = svc.Publish("noise", make([]byte, 4096))
		}
	}
	caller, _ := natstest.Connect(t, url)
	for _, tc := range []struct {
		name  string
		queue string
		stop  func(*responder.Responder)
	}{
		{"stop", "", (*responder.Responder).Stop},
		{"stop, queue group", "workers", (*responder.Responder).Stop},
		{"drain, queue group", "workers", (*responder.Responder).Drain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; i < 50; i++ {
				r, err := responder.Listen(context.Background(), svc, responder.Config{
					Subject: "svc.*", Queue: tc.queue,
					Handler: func(m *nats.Msg) { _ = m.Respond([]byte("ok")) },
				})
				if err != nil {
					t.Fatal(err)
				}
				m, err := caller.Request("svc.a", nil, 10*time.Second)
				if err != nil || string(m.Data) != "ok" {
					t.Fatalf("round %d: request right after Listen: %v", i, err)
				}
				busy()
				tc.stop(r)
				_, err = caller.Request("svc.a", nil, 10*time.Second)
				if !errors.Is(err, nats.ErrNoResponders) {
					t.Fatalf("round %d: request right after stopping: %v, want %v", i, err, nats.ErrNoResponders)
				}
				tc.stop(r) // twice is harmless
			}
		})
	}
}

// Drain hands the requests already delivered to the handler.
func TestDrainHandsOverWhatWasDelivered(t *testing.T) {
	url, _ := natstest.Start(t)
	svc, _ := natstest.Connect(t, url)
	caller, _ := natstest.Connect(t, url)
	entered := make(chan struct{}, 3)
	release := make(chan struct{})
	r, err := responder.Listen(context.Background(), svc, responder.Config{
		Subject: "svc.*",
		Handler: func(m *nats.Msg) {
			entered <- struct{}{}
			<-release
			_ = m.Respond([]byte("ok"))
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	replies, err := caller.SubscribeSync(caller.NewRespInbox())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := caller.PublishRequest("svc.a", replies.Subject, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := caller.Flush(); err != nil {
		t.Fatal(err)
	}
	<-entered
	// The server wrote the three requests to svc before the answer to
	// this ping, so once Flush returns all three are delivered.
	if err := svc.Flush(); err != nil {
		t.Fatal(err)
	}
	r.Drain()
	close(release)
	for i := 0; i < 3; i++ {
		if _, err := replies.NextMsg(10 * time.Second); err != nil {
			t.Fatalf("answer %d to a request delivered before Drain: %v", i+1, err)
		}
	}
}

func TestListenRefuses(t *testing.T) {
	url, _ := natstest.Start(t)
	nc, _ := natstest.Connect(t, url)
	for _, tc := range []struct {
		name string
		cfg  responder.Config
	}{
		{"no handler", responder.Config{Subject: "svc.a"}},
		{"bad subject", responder.Config{Subject: "svc..a", Handler: func(*nats.Msg) {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := responder.Listen(context.Background(), nc, tc.cfg); err == nil {
				t.Fatal("listened")
			}
		})
	}
	closed, _ := natstest.Connect(t, url)
	closed.Close()
	if _, err := responder.Listen(context.Background(), closed, responder.Config{Subject: "svc.a", Handler: func(*nats.Msg) {}}); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("on a closed connection: %v, want %v", err, nats.ErrConnectionClosed)
	}
}
