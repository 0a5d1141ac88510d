package broker

import (
	"context"
	"time"

	"github.com/docaxis/docaxis/broker/failover"
	"github.com/nats-io/nats.go/jetstream"
)

// The mailbox's round trips through a failover (see retry.go). A message
// in hand is not kept alive while its marker is read, so those retries stay
// well inside the ack wait: past it the message would be delivered again
// meanwhile.

// fetch asks the mailbox's consumer for up to n messages, asking again
// while the consumer has no leader.
func (m *Mailbox) fetch(ctx context.Context, n int, wait time.Duration) (jetstream.MessageBatch, error) {
	return retry(ctx, m.c, func(context.Context) (jetstream.MessageBatch, error) {
		return m.cons.Fetch(n, jetstream.FetchMaxWait(wait))
	})
}

// fetchAgain tells whether a batch that ended with err (e.g. "leadership
// change" when the consumer's leader died mid-batch) is worth asking for
// again, after a short jittered pause; it is when err passes and ctx goes
// on.
func (m *Mailbox) fetchAgain(ctx context.Context, err error) bool {
	if !Transient(err) || m.c.retryPatience() <= 0 {
		return false
	}
	m.c.opts.logger.Debug("mailbox fetch interrupted, asking again", "agency", m.agency, "err", err)
	return failover.Pause(ctx)
}

// receivedMarker reads the received marker at key through a failover.
func (m *Mailbox) receivedMarker(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, MailboxAckWait/2)
	defer cancel()
	return retry(ctx, m.c, func(ctx context.Context) (jetstream.KeyValueEntry, error) {
		return m.c.received.Get(ctx, key)
	})
}

// ack acknowledges the message in. A lost ack is not lost work (the
// redelivery is answered from the marker), so a mailbox consuming for good
// (Consume) sends a plain ack and goes on: its connection stays up to
// carry it. Fetch's caller may close the connection as soon as it returns
// (the CLI's inbox), so there the ack waits for the server to confirm,
// asked again through a failover within the ack wait.
func (m *Mailbox) ack(ctx context.Context, in arrival) error {
	if in.consuming {
		return in.msg.Ack()
	}
	ctx, cancel := context.WithTimeout(ctx, MailboxAckWait/2)
	defer cancel()
	return retryDo(ctx, m.c, in.msg.DoubleAck)
}
