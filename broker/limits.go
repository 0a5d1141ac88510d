package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/docaxis/docaxis/broker/ratelimit"
	"github.com/docaxis/docaxis/envelope"
)

// Limits the bus sets for every agency. The operator sets them on `serve`;
// they are published in the directory, so every client applies them at
// send time and every recipient refuses an envelope that breaks them.
type Limits struct {
	MaxEnvelopeBytes  int     `json:"max_envelope_bytes"`
	MaxRecipients     int     `json:"max_recipients"`
	MaxAttachments    int     `json:"max_attachments"`
	MaxAttachmentSize int64   `json:"max_attachment_size"`
	PublishRate       float64 `json:"publish_rate"` // envelopes per second per agency, with a burst of as many
}

// DefaultLimits fit the envelope package's own bounds; the publish rate is
// not limited unless the operator sets one.
var DefaultLimits = Limits{
	MaxEnvelopeBytes:  envelope.MaxWireSize,
	MaxRecipients:     envelope.MaxRecipients,
	MaxAttachments:    envelope.MaxAttachments,
	MaxAttachmentSize: 5 << 30,
}

// ErrLimit is matched by every breach of the bus's limits.
var ErrLimit = errors.New("over the bus's limit")

// ErrRateLimited: the agency sends faster than the bus allows.
var ErrRateLimited = fmt.Errorf("%w: publish rate", ErrLimit)

const limitsKey = "limits"

// SetLimits publishes the bus's limits in the directory.
func (c *Client) SetLimits(ctx context.Context, l Limits) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if _, err := c.dir.kv.Put(ctx, limitsKey, b); err != nil {
		return fmt.Errorf("publish limits: %w", err)
	}
	c.dir.setLimits(l)
	return nil
}

// Limits returns the limits in force.
func (c *Client) Limits() Limits { return c.dir.getLimits() }

// checkLimits refuses an envelope over the limits (not the rate).
func (l Limits) check(e *envelope.Envelope, wire int) error {
	switch {
	case l.MaxRecipients > 0 && len(e.To) > l.MaxRecipients:
		return fmt.Errorf("%w: %d recipients, at most %d", ErrLimit, len(e.To), l.MaxRecipients)
	case l.MaxAttachments > 0 && len(e.Attachments) > l.MaxAttachments:
		return fmt.Errorf("%w: %d attachments, at most %d", ErrLimit, len(e.Attachments), l.MaxAttachments)
	case l.MaxEnvelopeBytes > 0 && wire > l.MaxEnvelopeBytes:
		return fmt.Errorf("%w: signed envelope of %d bytes, at most %d", ErrLimit, wire, l.MaxEnvelopeBytes)
	}
	for _, a := range e.Attachments {
		if l.MaxAttachmentSize > 0 && a.Size > l.MaxAttachmentSize {
			return fmt.Errorf("%w: attachment %s is %d bytes, at most %d", ErrLimit, a.Name, a.Size, l.MaxAttachmentSize)
		}
	}
	return nil
}

// rateLimiter is a token bucket per agency whose burst is as many as its
// rate (the publish rate, the tracking and quarantine services).
type rateLimiter struct{ ratelimit.Limiter }

func (r *rateLimiter) allow(agency string, rate float64) bool {
	return r.Allow(agency, ratelimit.Rate{PerSecond: rate, Burst: rate})
}
