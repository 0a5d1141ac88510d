package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// RecordedStatus is a signed status read back from the record.
type RecordedStatus struct {
	Recipient string
	Seq       uint64
	Signed    *envelope.Signed
}

// Statuses reads back, verified, every signed status on record for
// envelope id (receipts and business statuses of every recipient the
// caller may see), in the order the tracker applied them.
//
// An agency client reads them through the bus's tracking service (it has
// no access to the record) and verifies each one itself.
func (c *Client) Statuses(ctx context.Context, id string) ([]RecordedStatus, error) {
	if c.opts.agency != "" {
		if !envelope.IsID(id) {
			return nil, fmt.Errorf("statuses: %q is not an envelope id (a UUID)", id)
		}
		return c.svcStatuses(ctx, id)
	}
	ds, err := c.Status(ctx, id)
	if err != nil {
		return nil, err
	}
	st, err := c.js.Stream(ctx, record.Stream)
	if err != nil {
		return nil, fmt.Errorf("statuses of %s: %w", id, c.explain(err))
	}
	var out []RecordedStatus
	for _, r := range ds.Recipients {
		for _, ev := range r.History {
			if ev.Status == "" || ev.Seq == 0 || ev.State == envelope.StateRecallRequested {
				continue // sent, and recalls (envelopes of their own), have no status message
			}
			msg, err := st.GetMsg(ctx, ev.Seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				return nil, fmt.Errorf("%w: status %s of %s is no longer in the record", ErrNotFound, ev.Status, id)
			}
			if err != nil {
				return nil, fmt.Errorf("read status %s: %w", ev.Status, err)
			}
			s, err := envelope.Open(msg.Data)
			if err == nil {
				err = c.judgeStored(s, msg.Header, s.Envelope.From, msg.Time)
			}
			if err != nil {
				return nil, fmt.Errorf("status %s of %s on record does not verify: %w", ev.Status, id, err)
			}
			out = append(out, RecordedStatus{Recipient: r.Recipient, Seq: ev.Seq, Signed: s})
		}
	}
	return out, nil
}
