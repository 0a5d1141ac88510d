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
		AckWait:       MailboxAckWait,
		MaxDeliver:    MaxDeliver,
		MaxAckPending: 10000,
	}
}

// MailboxAckWait is how long a delivered envelope may go without an ack
// or a progress ack before another receiver gets it. The mailbox sends
// progress acks while it works, so a slow handler is not affected.
var MailboxAckWait = 30 * time.Second

// MaxDeliver bounds redelivery; after the last attempt a message goes to
// the quarantine with its reason.
const MaxDeliver = 6

// EnsureMailbox creates the agency's mailbox consumer if it is missing.
func EnsureMailbox(ctx context.Context, js jetstream.JetStream, agency string) (jetstream.Consumer, error) {
	cfg := MailboxConsumerConfig(agency)
	c, err := js.Consumer(ctx, record.Stream, cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) || (err == nil &&
		(len(c.CachedInfo().Config.BackOff) > 0 || c.CachedInfo().Config.AckWait != cfg.AckWait)) {
		// Missing, or made with other settings (earlier versions had a
		// BackOff): bring it to this version's.
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
