package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go/jetstream"
)

// MailboxConsumerConfig is the durable consumer of an agency's mailbox:
// explicit ack, bounded redelivery with back-off. MaxAckPending is large so
// that a slow application does not stall the mailbox, and the mailbox code
// never holds more than one fetch batch unacknowledged.
func MailboxConsumerConfig(agency string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       record.MailboxDurable(agency),
		Description:   "mailbox of " + agency,
		FilterSubject: record.MailboxFilter(agency),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// No BackOff: the server would take its first step (1s) as the ack
		// wait, and an envelope still being handled, whose progress acks
		// are lost in a failover, would go to another worker meanwhile.
		// Retries are spaced by the mailbox (NakWithDelay); a dead
		// recipient's envelopes come back after AckWait.
		AckWait: MailboxAckWait,
		// The server never gives up on a copy: past MaxDeliver it would
		// drop one whose last delivery went unanswered (a recipient that
		// died with it) without a word, and nothing would quarantine it.
		// The mailbox bounds the deliveries itself (Mailbox.process).
		MaxDeliver:    -1,
		MaxAckPending: 10000,
	}
}

// mailboxOutdated tells a mailbox consumer made with other settings than
// this version's (an earlier version's BackOff or MaxDeliver).
func mailboxOutdated(cfg jetstream.ConsumerConfig) bool {
	want := MailboxConsumerConfig("")
	return len(cfg.BackOff) > 0 || cfg.AckWait != want.AckWait || cfg.MaxDeliver != want.MaxDeliver
}

// updateMailbox brings a mailbox consumer made by an earlier version to
// this version's settings, keeping its filters.
func updateMailbox(ctx context.Context, js jetstream.JetStream, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	want := MailboxConsumerConfig("")
	cfg.BackOff, cfg.AckWait, cfg.MaxDeliver = nil, want.AckWait, want.MaxDeliver
	return js.UpdateConsumer(ctx, record.Stream, cfg)
}

// MailboxAckWait is how long a delivered envelope may go without an ack
// or a progress ack before another receiver gets it. The mailbox sends
// progress acks while it works, so a slow handler is not affected.
var MailboxAckWait = 30 * time.Second

// MaxDeliver bounds the deliveries of a copy: after the last attempt, or
// a delivery past it (every one before went unanswered), it goes to the
// quarantine with its reason.
const MaxDeliver = 6

// EnsureMailbox creates the agency's mailbox consumer if it is missing.
func EnsureMailbox(ctx context.Context, js jetstream.JetStream, agency string) (jetstream.Consumer, error) {
	cfg := MailboxConsumerConfig(agency)
	c, err := js.Consumer(ctx, record.Stream, cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) || (err == nil && mailboxOutdated(c.CachedInfo().Config)) {
		// Missing, or made with other settings (earlier versions had a
		// BackOff, then a MaxDeliver): bring it to this version's.
		c, err = js.CreateOrUpdateConsumer(ctx, record.Stream, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("mailbox of %s: %w", agency, err)
	}
	return c, nil
}

// mailboxConsumer returns agency's mailbox consumer. The bus's own client
// creates or updates it as needed; an agency's client only binds to it:
// its credentials may not create or change consumers (the bus creates the
// mailbox when the agency is registered and updates it on start).
func (c *Client) mailboxConsumer(ctx context.Context, agency string) (jetstream.Consumer, error) {
	if c.opts.agency == "" {
		return EnsureMailbox(ctx, c.js, agency)
	}
	cons, err := c.js.Consumer(ctx, record.Stream, record.MailboxDurable(agency))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("%w for %s (the bus makes it when the agency is registered: docaxis agency add %s)", ErrNoMailbox, agency, agency)
	}
	if err != nil {
		return nil, fmt.Errorf("mailbox of %s: %w", agency, err)
	}
	return cons, nil
}
