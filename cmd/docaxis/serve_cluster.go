package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// waitJetStream waits until the JetStream of the external cluster at nc
// answers (its meta leader is elected): a cluster whose nodes have just
// started accepts connections before that, and a request it gets then may
// go unanswered until the caller's deadline. Each attempt is short, so the
// set-up goes on as soon as the cluster is ready.
func waitJetStream(ctx context.Context, nc *nats.Conn, log *slog.Logger) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("open JetStream: %w", err)
	}
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		if attempt == 3 {
			log.Warn("waiting for the cluster's JetStream (meta leader elected? every node started with the same cluster name and routes?)", "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("JetStream of the cluster not ready: %w (last: %v)", ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
