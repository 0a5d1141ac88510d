package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The one receive path. Every way of receiving a copy — the mailbox
// (Go, CLI, a system's mailbox), the HTTP API's acknowledgement and the
// compatibility API built on it — runs the same stages in the same order:
//
//  1. verify (signature, chain, revocation and bindings at the recorded
//     time), the address (subject, recipient, sender), the limits, and the
//     bus's publish-rate verdict: verifyCopy;
//  2. attachments: every SHA-256 while it streams, and the PDF policy and
//     the application's checks (Mailbox.attachmentsWhenGranted);
//  3. the application (the mailbox's handler; over HTTP, the DMS already
//     has the envelope when it acknowledges);
//  4. the received marker, then the signed delivered receipt: accept;
//  5. the ack (mailbox) or the answer (HTTP).
//
// A copy failing stage 1 or 2 for good is refused: the sender gets a
// signed invalid receipt with the reason and the copy goes to quarantine.

// copyInHand is a copy being received.
type copyInHand struct {
	subject  string
	header   nats.Header
	raw      []byte
	seq      uint64
	recorded time.Time // when this bus stored it
	// inHand is a moment this client already held the copy (zero: now).
	// Any read of the directory that starts after it is after the copy's
	// recording, so the copies a batch brought share one such read.
	inHand time.Time
}

// verifyCopy runs stage 1 for m's agency. s is what could be opened even
// when err is set (nil if nothing could); err wraps ErrReject when the
// copy is refused for good, and is transient otherwise.
func (m *Mailbox) verifyCopy(ctx context.Context, in copyInHand) (*envelope.Signed, error) {
	s, err := envelope.Open(in.raw)
	if err != nil {
		return nil, refusal{err}
	}
	// Revocations published before the copy was recorded count: an
	// agency's client reads them again first if needed.
	if err := m.c.dir.settle(ctx, s.Envelope.From, in.recorded, in.inHand); err != nil {
		return s, err
	}
	err = m.c.judgeStored(s, in.header, s.Envelope.From, in.recorded)
	if errors.Is(err, signing.ErrNotServed) && m.c.dir.refresh(ctx, s.Envelope.From) {
		// The cached entry may predate the binding: read it again once.
		err = m.c.judgeStored(s, in.header, s.Envelope.From, in.recorded)
	}
	if err == nil {
		err = m.checkAddress(in.subject, s.Envelope)
	}
	if err == nil {
		err = m.c.Limits().check(s.Envelope, len(in.raw))
	}
	if err != nil {
		if !errors.Is(err, ErrReject) {
			err = refusal{err}
		}
		return s, err
	}
	// The bus's verdict on the publish rate (rategate.go): a raw publisher
	// cannot get past it, whatever it did not check itself.
	if err := m.c.admit(ctx, m.agency, in.seq); err != nil {
		return s, err
	}
	return s, nil
}

// received reads the marker of m's agency for envelope id: nil when it was
// handed to the application before.
func (m *Mailbox) received(ctx context.Context, id string) (*receivedRecord, error) {
	entry, err := m.receivedMarker(ctx, record.ReceivedKey(m.agency, id))
	if err != nil {
		return nil, err
	}
	var rec receivedRecord
	if json.Unmarshal(entry.Value(), &rec) != nil {
		rec.At, _ = time.Parse(time.RFC3339Nano, string(entry.Value())) // written by an earlier version
	}
	return &rec, nil
}

// accept runs stage 4: the marker first — once it is written the
// application is never handed this envelope again, whatever fails next —
// then the signed delivered receipt (a retry finishes it from the marker).
func (m *Mailbox) accept(ctx context.Context, d *Delivery) (time.Time, error) {
	at := time.Now().UTC()
	mark, _ := json.Marshal(receivedRecord{At: at, Digest: d.Digest, Details: d.Details})
	if err := m.putMarker(ctx, record.ReceivedKey(m.agency, d.Envelope.ID), mark); err != nil {
		return at, fmt.Errorf("record received marker: %w", err)
	}
	if err := m.receipt(ctx, d.Envelope, envelope.StateDelivered, d.Digest, "", d.Details); err != nil {
		return at, fmt.Errorf("send receipt: %w", err)
	}
	return at, nil
}

// refusal marks a check's failure as final (errors.Is(err, ErrReject))
// without changing its text: the reason travels in the invalid receipt.
type refusal struct{ error }

func (r refusal) Unwrap() error        { return r.error }
func (r refusal) Is(target error) bool { return target == ErrReject }

// HandedOver tells whether envelope id was handed to agency's application
// (its received marker exists), read through a failover as the mailbox
// reads it; a read that fails otherwise than "no marker" is no answer. The
// compatibility API lists nothing handed over before.
func (c *Client) HandedOver(ctx context.Context, agency, id string) (bool, error) {
	_, err := retry(ctx, c, func(ctx context.Context) (jetstream.KeyValueEntry, error) {
		return c.received.Get(ctx, record.ReceivedKey(agency, id))
	})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("received marker of %s for %s: %w", id, agency, err)
}

// MarkHandedOver writes agency's received marker of envelope id, for what
// has no receive path of its own: a status a document system took through
// the compatibility API (no receipt answers a status).
func (c *Client) MarkHandedOver(ctx context.Context, agency, id string) error {
	mark, err := json.Marshal(receivedRecord{At: time.Now().UTC()})
	if err != nil {
		return err
	}
	if _, err := retry(ctx, c, func(ctx context.Context) (uint64, error) {
		return c.received.Put(ctx, record.ReceivedKey(agency, id), mark)
	}); err != nil {
		return fmt.Errorf("received marker of %s for %s: %w", id, agency, err)
	}
	return nil
}
