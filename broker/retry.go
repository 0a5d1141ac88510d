package broker

import (
	"context"
	"errors"
	"time"

	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/envelope"
)

// Riding through a failover (package failover): the client asks again
// itself within the caller's deadline, so callers see an error only when
// their deadline passes or the failure is not one that passes.

// DefaultRetryPatience bounds the retries of a call whose context has no
// deadline (see WithRetryPatience).
const DefaultRetryPatience = failover.DefaultPatience

// WithRetryPatience sets how long the client keeps asking again through a
// failover when the caller's context has no deadline (default
// DefaultRetryPatience); with a deadline, the deadline is the bound. 0
// turns retries off.
func WithRetryPatience(d time.Duration) Option {
	return func(o *options) error { o.retryPatience = &d; return nil }
}

// Transient reports whether err passes by itself (failover.Transient) and
// is not the bus refusing these credentials (ErrPermission, which the
// client says for a request that timed out after a permission violation).
func Transient(err error) bool {
	return failover.Transient(err) && !errors.Is(err, ErrPermission)
}

// retryPatience is how long calls without a deadline keep retrying.
func (c *Client) retryPatience() time.Duration {
	if c.opts.retryPatience != nil {
		return *c.opts.retryPatience
	}
	return DefaultRetryPatience
}

// retry calls fn through a failover (failover.Do) within the caller's
// deadline or the client's patience, each attempt bounded by the client's
// timeout (at least failover.DefaultAttempt).
func retry[T any](ctx context.Context, c *Client, fn func(ctx context.Context) (T, error)) (T, error) {
	patience := c.retryPatience()
	if patience <= 0 {
		return fn(ctx)
	}
	return failover.Do(ctx, failover.Policy{
		Patience:  patience,
		Attempt:   max(c.opts.timeout, failover.DefaultAttempt),
		Transient: Transient,
		Logger:    c.opts.logger,
	}, fn)
}

// retryDo is retry for calls that return only an error.
func retryDo(ctx context.Context, c *Client, fn func(ctx context.Context) error) error {
	_, err := retry(ctx, c, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
	return err
}

// publishEnvelopeRetry is publishEnvelope through a failover: the same
// signed bytes with the same dedup ids, so each copy is stored once; a
// recipient the bus tracks a copy for already (storedCopies) gets none. An
// attempt after the first that finds every copy stored is a success: the
// copies are the ones an earlier attempt stored (a resent id is refused
// before, by checkIDFree, or by the first attempt).
func (c *Client) publishEnvelopeRetry(ctx context.Context, e *envelope.Envelope, raw []byte) (*SendResult, error) {
	stored, err := c.storedCopies(ctx, e)
	if err != nil {
		return nil, err
	}
	attempt := 0
	res, err := retry(ctx, c, func(ctx context.Context) (*SendResult, error) {
		attempt++
		return c.publishEnvelope(ctx, e, raw, stored)
	})
	if attempt > 1 && errors.Is(err, ErrDuplicate) {
		return res, nil
	}
	return res, err
}
