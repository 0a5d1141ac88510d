// Package failover rides through the failures of a JetStream cluster that
// pass by themselves. A stream or consumer whose leader dies has no leader
// for a few seconds, and a client whose server dies reconnects to another:
// every request in that window fails in one of a handful of ways
// (Transient), and asking again with the same ids (dedup ids, ack tokens,
// keys) is safe. Do asks again within the caller's deadline, each attempt
// with a deadline of its own, so that a request lost with a dead server
// does not use up the caller's.
//
// It is the one place that knows those failures: the agencies' client
// (package broker), the leases, the bus's buckets and the audit chain all
// ask through it.
package failover

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of a Policy.
const (
	// DefaultPatience bounds the retries of a call whose context has no
	// deadline.
	DefaultPatience = time.Minute
	// DefaultAttempt bounds one attempt: short enough that a request lost
	// with a dead server is asked again well before the caller's deadline,
	// long enough for a healthy but busy cluster.
	DefaultAttempt = 5 * time.Second
)

// Backoff is the first wait between attempts; it doubles up to
// BackoffMax, with jitter so that many clients do not ask again in step
// when a new leader comes up.
const (
	Backoff    = 50 * time.Millisecond
	BackoffMax = time.Second
)

// JetStream API error codes a cluster answers while it elects a leader or
// a peer is down.
const (
	errClusterNoPeers   jetstream.ErrorCode = 10005 // no suitable peers for placement: a peer is offline
	errClusterNotAvail  jetstream.ErrorCode = 10008 // JetStream system temporarily unavailable
	errClusterNotLeader jetstream.ErrorCode = 10009 // cluster can not handle request
	errStreamOffline    jetstream.ErrorCode = 10118
	errConsumerOffline  jetstream.ErrorCode = 10119
)

// ErrUnavailable is what a service of the bus answers when it could not
// do the work now (its own read of the bus failed through a failover): it
// passes like the failures below.
var ErrUnavailable = errors.New("unavailable for now")

// Transient reports whether err is a failure that a leader election, a
// node restart or a reconnection causes and that passes by itself: asking
// again with the same ids is safe. A refused permission, a caller's
// cancelled or expired context and every answer about the request itself
// (not found, wrong sequence, too large) are not.
func Transient(err error) bool {
	if err == nil || errors.Is(err, nats.ErrPermissionViolation) || errors.Is(err, context.Canceled) {
		return false
	}
	for _, e := range []error{
		ErrUnavailable,
		nats.ErrNoResponders, nats.ErrTimeout, context.DeadlineExceeded,
		nats.ErrConnectionReconnecting, nats.ErrDisconnected, nats.ErrStaleConnection,
		jetstream.ErrNoStreamResponse, jetstream.ErrConsumerLeadershipChanged, jetstream.ErrNoHeartbeat,
		jetstream.ErrJetStreamNotEnabled, // said while the meta group has no leader
		jetstream.ErrTooManyStalledMsgs,  // back-pressure: nothing was published
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case errClusterNoPeers, errClusterNotAvail, errClusterNotLeader, errStreamOffline, errConsumerOffline:
			return true
		}
		return apiErr.Code == 503
	}
	return false
}

// Policy says how Do asks again. The zero Policy is the default one.
type Policy struct {
	// Patience bounds the retries of a call whose context has no deadline
	// (default DefaultPatience); with a deadline, the deadline is the
	// bound.
	Patience time.Duration
	// Attempt bounds one attempt (default DefaultAttempt; never more than
	// the patience).
	Attempt time.Duration
	// Transient tells the failures worth asking again (default Transient).
	Transient func(error) bool
	// Logger hears of the retries, at debug level (default none).
	Logger *slog.Logger
	// OnRetry, when set, is told of each failed attempt that will be made
	// again, instead of Logger (e.g. to warn where a retry matters).
	OnRetry func(attempt int, err error)
}

// Do calls fn until it succeeds, fails with an error that is not
// transient, or the caller's deadline (or the policy's patience) passes;
// it then returns fn's last answer.
func Do[T any](ctx context.Context, p Policy, fn func(ctx context.Context) (T, error)) (T, error) {
	if p.Patience <= 0 {
		p.Patience = DefaultPatience
	}
	if p.Attempt <= 0 {
		p.Attempt = DefaultAttempt
	}
	if p.Transient == nil {
		p.Transient = Transient
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.Patience)
		defer cancel()
	}
	wait := Backoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, min(p.Attempt, p.Patience))
		v, err := fn(actx)
		cancel()
		if err == nil || !p.Transient(err) || ctx.Err() != nil {
			return v, err
		}
		switch {
		case p.OnRetry != nil:
			p.OnRetry(attempt, err)
		case p.Logger != nil && (attempt == 1 || attempt%10 == 0):
			p.Logger.Debug("bus unavailable, asking again", "attempt", attempt, "err", err)
		}
		// Full jitter in [wait/2, wait).
		d := wait/2 + rand.N(wait/2)
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(d):
		}
		wait = min(2*wait, BackoffMax)
	}
}

// Pause waits a short jittered while before a call is asked again outside
// Do (e.g. a batch that ended early), and tells whether ctx goes on.
func Pause(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(Backoff + rand.N(4*Backoff)):
		return true
	}
}
