package broker

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Riding through a failover: on a JetStream cluster, a stream or consumer
// whose leader dies has no leader for a few seconds, and a client whose
// server dies reconnects to another. Every request in that window fails in
// one of a handful of ways, all of which pass; asking again with the same
// ids (dedup ids, ack tokens, keys) is safe. The client does that itself
// within the caller's deadline, so callers see an error only when their
// deadline passes or the failure is not one that passes.

// DefaultRetryPatience bounds the retries of a call whose context has no
// deadline (see WithRetryPatience).
const DefaultRetryPatience = time.Minute

// WithRetryPatience sets how long the client keeps asking again through a
// failover when the caller's context has no deadline (default
// DefaultRetryPatience); with a deadline, the deadline is the bound. 0
// turns retries off.
func WithRetryPatience(d time.Duration) Option {
	return func(o *options) error { o.retryPatience = &d; return nil }
}

// JetStream API error codes a cluster answers while it elects a leader or
// a peer is down.
const (
	jsErrClusterNotAvail  jetstream.ErrorCode = 10008 // JetStream system temporarily unavailable
	jsErrClusterNotLeader jetstream.ErrorCode = 10009 // cluster can not handle request
	jsErrStreamOffline    jetstream.ErrorCode = 10118
	jsErrConsumerOffline  jetstream.ErrorCode = 10119
)

// Transient reports whether err is a failure that a leader election, a
// node restart or a reconnection causes and that passes by itself: asking
// again with the same ids is safe. A refused permission, a caller's
// cancelled or expired context and every answer about the request itself
// (not found, wrong sequence, too large) are not.
func Transient(err error) bool {
	if err == nil || errors.Is(err, ErrPermission) || errors.Is(err, context.Canceled) {
		return false
	}
	for _, e := range []error{
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
		case jsErrClusterNotAvail, jsErrClusterNotLeader, jsErrStreamOffline, jsErrConsumerOffline:
			return true
		}
		return apiErr.Code == 503
	}
	return false
}

// retryPatience is how long calls without a deadline keep retrying.
func (c *Client) retryPatience() time.Duration {
	if c.opts.retryPatience != nil {
		return *c.opts.retryPatience
	}
	return DefaultRetryPatience
}

// retryAttempt bounds one attempt: short enough that a request lost with a
// dead server is asked again well before the caller's deadline, long
// enough for a healthy but busy cluster.
const retryAttempt = 5 * time.Second

// retryBackoff is the first wait between attempts; it doubles up to
// retryBackoffMax, with jitter so that many clients do not ask again in
// step when a new leader comes up.
const (
	retryBackoff    = 50 * time.Millisecond
	retryBackoffMax = time.Second
)

// retry calls fn until it succeeds, fails with an error that is not
// Transient, or the caller's deadline (or the client's patience) passes;
// it then returns fn's last answer. Each attempt gets its own deadline
// (see retryAttempt), so a request lost with a dead server does not use
// up the caller's.
func retry[T any](ctx context.Context, c *Client, fn func(ctx context.Context) (T, error)) (T, error) {
	patience := c.retryPatience()
	if patience <= 0 {
		return fn(ctx)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, patience)
		defer cancel()
	}
	wait := retryBackoff
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, min(max(c.opts.timeout, retryAttempt), patience))
		v, err := fn(actx)
		cancel()
		if err == nil || !Transient(err) || ctx.Err() != nil {
			return v, err
		}
		if attempt == 1 || attempt%10 == 0 {
			c.opts.logger.Debug("bus unavailable, asking again", "attempt", attempt, "err", err)
		}
		// Full jitter in [wait/2, wait).
		d := wait/2 + rand.N(wait/2)
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(d):
		}
		wait = min(2*wait, retryBackoffMax)
	}
}

// retryDo is retry for calls that return only an error.
func retryDo(ctx context.Context, c *Client, fn func(ctx context.Context) error) error {
	_, err := retry(ctx, c, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
	return err
}

// publishRetry publishes msg (which carries its dedup id) to the record,
// asking again through a failover; a copy stored by an attempt whose ack
// was lost comes back as a duplicate of itself.
func (c *Client) publishRetry(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return retry(ctx, c, func(ctx context.Context) (*jetstream.PubAck, error) {
		return c.js.PublishMsg(ctx, msg, opts...)
	})
}

// publishEnvelopeRetry is publishEnvelope through a failover: the same
// signed bytes with the same dedup ids, so each copy is stored once. An
// attempt after the first that finds every copy stored is a success: the
// copies are the ones an earlier attempt stored (a resent id is refused
// before, by checkIDFree, or by the first attempt).
func (c *Client) publishEnvelopeRetry(ctx context.Context, e *envelope.Envelope, raw []byte) (*SendResult, error) {
	attempt := 0
	res, err := retry(ctx, c, func(ctx context.Context) (*SendResult, error) {
		attempt++
		return c.publishEnvelope(ctx, e, raw)
	})
	if attempt > 1 && errors.Is(err, ErrDuplicate) {
		return res, nil
	}
	return res, err
}
