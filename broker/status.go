package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// receiptNamespace derives receipt ids: the receipt for (envelope,
// sender, recipient, state) always has the same id, so a redelivered
// envelope's receipt is deduplicated like the first. The sender counts:
// another agency's envelope reusing the id must not take the rightful
// receipt's message id (idConflict).
var receiptNamespace = uuid.MustParse("6f1c1d1e-8a55-4b7e-9a3c-64d0c6d2a9b1")

func (m *Mailbox) receipt(ctx context.Context, e *envelope.Envelope, state envelope.State, digest, reason string, details map[string]any) error {
	st := envelope.NewStatus(m.agency, e.From, e.ID, state)
	st.ID = uuid.NewSHA1(receiptNamespace, []byte(e.ID+"|"+e.From+"|"+m.agency+"|"+string(state))).String()
	st.Status.Digest = digest
	st.Status.Reason = reason
	st.Status.Details = details
	raw, err := m.id.Seal(st, envelope.AllowCodes(m.c.dir.known))
	if err != nil {
		return fmt.Errorf("sign %s receipt for %s: %w", state, e.ID, err)
	}
	return m.c.publishStatus(ctx, st, raw)
}

func (c *Client) publishStatus(ctx context.Context, st *envelope.Envelope, raw []byte) error {
	msg := &nats.Msg{Subject: record.StatusSubject(st.To[0], st.From), Data: raw, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, st.ID)
	msg.Header.Set(record.HeaderEnvelope, st.Status.Of)
	if _, err := c.publishRecordRetry(ctx, msg); err != nil {
		return fmt.Errorf("publish %s status for %s: %w", st.Status.State, st.Status.Of, err)
	}
	return nil
}

// MarkOptions add detail to a business status.
type MarkOptions struct {
	Note  string
	Staff *envelope.Staff
	// Wait, when positive, makes Mark return once the bus has applied the
	// status, for Wait at most: the status is stored either way, and a
	// wait that runs out is no error (the tracker catches up later).
	Wait time.Duration
}

// Mark sets a business status (accepted, rejected, assigned, processing,
// done, or the answers to a recall) on envelope id as recipient agency
// as. The status is a signed message to the sender; the transition is
// checked against the current state first, and again by the tracker.
// Without o.Wait, Mark returns once the status is stored, before the
// tracker applies it: a status marked at once after (accepted, then
// processing) may then be judged from the state before this one. A caller
// that marks again, or answers a reader who will look, sets o.Wait.
func (c *Client) Mark(ctx context.Context, as, id string, state envelope.State, o MarkOptions) (*envelope.Envelope, error) {
	if !state.Business() {
		return nil, fmt.Errorf("mark %s: %q is set by the bus, not by a clerk (accepted, rejected, assigned, processing, done, recall-accepted, recall-refused)", id, state)
	}
	signer, err := c.Identity(as)
	if err != nil {
		return nil, fmt.Errorf("mark %s as %s: %w", id, as, err)
	}
	t, err := c.Tracking(ctx, id, as)
	if err != nil {
		return nil, fmt.Errorf("mark %s as %s: %w (%w)", id, as, err, ErrNotRecipient)
	}
	if err := envelope.CheckTransition(t.State, state); err != nil {
		return nil, fmt.Errorf("mark %s as %s: %w", id, as, err)
	}
	st := envelope.NewStatus(as, t.Sender, id, state)
	st.Status.Note = o.Note
	st.Status.Staff = o.Staff
	raw, err := signer.Seal(st, envelope.AllowCodes(c.dir.known))
	if err != nil {
		return nil, fmt.Errorf("mark %s: %w", id, err)
	}
	if err := c.publishStatus(ctx, st, raw); err != nil {
		return nil, err
	}
	if o.Wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, o.Wait)
		_, _ = c.WaitStatus(wctx, id, as, st.ID)
		cancel()
	}
	return st, nil
}

// PublishStatus publishes a status envelope signed elsewhere (by a DMS or
// converted from edXML), after verifying it.
func (c *Client) PublishStatus(ctx context.Context, raw []byte) (*envelope.Envelope, error) {
	s, err := c.verifier.Verify(raw)
	if err != nil {
		return nil, fmt.Errorf("publish status: %w", err)
	}
	if s.Envelope.Kind != envelope.KindStatus {
		return nil, fmt.Errorf("publish status: envelope %s is a %s, not a status", s.Envelope.ID, s.Envelope.Kind)
	}
	return s.Envelope, c.publishStatus(ctx, s.Envelope, raw)
}
