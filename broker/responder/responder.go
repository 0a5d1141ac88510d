// Package responder is a bus service's subscription to the subject it
// answers requests on.
//
// A request made right after a service starts must reach it, and one made
// right after it stops must hear "no responders" at once, not wait out its
// timeout at a subscription the server still counts. Neither holds by
// itself: a subscription's SUB and UNSUB leave in the connection's buffer,
// and a request on another connection can reach the server first. Listen
// returns only once the server has the interest, and Stop and Drain only
// once it has dropped it.
package responder

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// stopFlush bounds how long Stop and Drain wait for the server to confirm
// the unsubscribe: a connection that cannot flush in that time is in
// trouble, and the request will time out whatever Stop does.
const stopFlush = 2 * time.Second

// listenFlush bounds Listen's wait for the server when ctx has no
// deadline of its own.
const listenFlush = 30 * time.Second

// Config is a responder's subscription.
type Config struct {
	// Subject is what the service answers, wildcards allowed.
	Subject string
	// Queue, when set, shares the requests among the processes that
	// listen in the same queue group.
	Queue string
	// Handler answers a request.
	Handler nats.MsgHandler
	// PendingBytes, when set, is the subscription's limit of bytes
	// delivered and not yet handled (nats.go's default is 64 MiB).
	PendingBytes int
}

// Responder is a live subscription. Its methods are safe to call more
// than once and from several goroutines.
type Responder struct {
	nc   *nats.Conn
	sub  *nats.Subscription
	once sync.Once
}

// Listen subscribes to cfg.Subject on nc and returns once the server has
// the interest, or ctx ends (in 30 s when it has no deadline).
func Listen(ctx context.Context, nc *nats.Conn, cfg Config) (*Responder, error) {
	if cfg.Handler == nil {
		return nil, fmt.Errorf("listen on %q: no handler", cfg.Subject)
	}
	var (
		sub *nats.Subscription
		err error
	)
	if cfg.Queue != "" {
		sub, err = nc.QueueSubscribe(cfg.Subject, cfg.Queue, cfg.Handler)
	} else {
		sub, err = nc.Subscribe(cfg.Subject, cfg.Handler)
	}
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", cfg.Subject, err)
	}
	if cfg.PendingBytes > 0 {
		_ = sub.SetPendingLimits(-1, cfg.PendingBytes)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, listenFlush)
		defer cancel()
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("listen on %q: %w", cfg.Subject, err)
	}
	return &Responder{nc: nc, sub: sub}, nil
}

// Stop drops the subscription: no request is handed to the handler after
// it returns, though a handler already running goes on.
func (r *Responder) Stop() {
	r.once.Do(func() {
		_ = r.sub.Unsubscribe()
		r.flush()
	})
}

// Drain stops taking requests but hands those already delivered to the
// handler; it does not wait for them (the service counts its own work).
func (r *Responder) Drain() {
	r.once.Do(func() {
		_ = r.sub.Drain()
		r.flush()
	})
}

// flush waits until the server has the UNSUB. A closed connection has no
// subscriptions left to wait for.
func (r *Responder) flush() {
	if r.nc.IsClosed() {
		return
	}
	_ = r.nc.FlushTimeout(stopFlush)
}
