package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// A duty's holder may serve the other processes (the audit chainer signs
// their checkpoints, the rate gate judges their copies): they ask it on a
// subject only the holder answers. During a handover nobody answers for a
// moment, and the asking process may be the one that takes over.

var (
	// ErrHeldHere: this process holds the duty now; do it here rather
	// than ask.
	ErrHeldHere = errors.New("this process holds the duty")
	// ErrNoHolder: no process answered for the duty before ctx ended.
	ErrNoHolder = errors.New("no process holds the duty")
)

// askAttempt bounds one request to the holder; askPause spaces the
// requests while nobody answers.
const (
	askAttempt = 30 * time.Second
	askPause   = 100 * time.Millisecond
)

// Ask sends data on subject to the process holding a duty and returns its
// answer, waiting through a handover until ctx ends (then ErrNoHolder).
// here tells whether this process holds the duty, ready to do it: Ask
// then returns ErrHeldHere.
func Ask(ctx context.Context, nc *nats.Conn, subject string, data []byte, here func() bool) (*nats.Msg, error) {
	for {
		if here() {
			return nil, ErrHeldHere
		}
		rctx, cancel := context.WithTimeout(ctx, askAttempt)
		resp, err := nc.RequestWithContext(rctx, subject, data)
		cancel()
		if !errors.Is(err, nats.ErrNoResponders) {
			return resp, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (nobody answers %s)", ErrNoHolder, subject)
		case <-time.After(askPause):
		}
	}
}
