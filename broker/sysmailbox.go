package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// systemMailbox opens the mailbox of document system sys: every agency it
// serves, through one consumer (a filter subject each).
func (c *Client) systemMailbox(ctx context.Context, sys string, opts ...MailboxOption) (*Mailbox, error) {
	cons, err := c.js.Consumer(ctx, record.Stream, SystemDurable(sys))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("%w for system %s (the bus makes it when the system is registered: docaxis system add %s)", ErrNoMailbox, sys, sys)
	}
	if err != nil {
		return nil, c.explain(fmt.Errorf("mailbox of system %s: %w", sys, err))
	}
	o := mailboxOptions{verifyAtt: true, batch: 64, workers: 16}
	for _, opt := range opts {
		opt(&o)
	}
	return &Mailbox{c: c, agency: SystemActor(sys), cons: cons, opts: o, system: sys}, nil
}

// processForSystem handles a copy in a system's mailbox as its
// recipient's: the recipient must be one of the system's agencies now (an
// agency that moved away has its mail read by its new system's transfer
// consumer), and the system signs its receipt for it.
func (m *Mailbox) processForSystem(ctx context.Context, in arrival, h Handler) Outcome {
	msg := in.msg
	rs, ok := record.ParseSubject(msg.Subject())
	kind, to := rs.Kind, rs.To
	if !ok || kind != "doc" {
		_ = msg.Term()
		return m.report(Outcome{Error: "unexpected subject " + msg.Subject() + " in the mailbox of system " + m.system})
	}
	id, err := m.c.Identity(to)
	if errors.Is(err, ErrNotServed) || errors.Is(err, ErrUnknownAgency) {
		// Not ours (any more): its new mailbox reads it from the record.
		_ = msg.Term()
		return m.report(Outcome{Error: fmt.Sprintf("copy for %s left: %v", to, err)})
	}
	if err != nil {
		_ = msg.NakWithDelay(time.Second)
		return m.report(Outcome{Error: fmt.Sprintf("copy for %s: %v", to, err), Retry: true})
	}
	sub := *m
	sub.system, sub.agency, sub.id = "", to, id
	return sub.process(ctx, in, h)
}

// fetchTransfer drains the system's transfer consumer, when there is one.
func (m *Mailbox) fetchTransfer(ctx context.Context, h Handler) (int, error) {
	cons, err := m.c.js.Consumer(ctx, record.Stream, TransferDurable(m.system))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("transfer mailbox of system %s: %w", m.system, err)
	}
	handed := 0
	for {
		batch, err := cons.Fetch(m.opts.batch, jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			return handed, fmt.Errorf("fetch transfer mailbox of system %s: %w", m.system, err)
		}
		got := 0
		for in := range stamped(batch, m.opts.batch) {
			got++
			if m.process(ctx, in, h).Verified {
				handed++
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return handed, fmt.Errorf("fetch transfer mailbox of system %s: %w", m.system, err)
		}
		if got == 0 {
			return handed, nil
		}
	}
}
