package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reading a mailbox without consuming it, and acknowledging one envelope
// by id: what a DMS needs when it reaches the bus over HTTP and cannot hold
// a pull consumer open. The durable mailbox consumer is left alone; the
// received marker (AXIS_RECEIVED) is what makes the Go/CLI mailbox ack the
// envelope as a duplicate when it sees it later.

// ErrUnverified is wrapped by errors about an envelope that failed the
// recipient's checks (signature, chain, address, attachments).
var ErrUnverified = errors.New("envelope failed verification")

// StoredEnvelope is one envelope copy read back from the record.
type StoredEnvelope struct {
	Seq     uint64    // stream sequence of this copy
	Subject string    // axis.doc.<to>.<from>
	Stored  time.Time // when the bus stored it
	Raw     []byte    // the exact signed bytes
	Header  nats.Header
	// Signed is nil when the bytes are not a well-formed signed envelope.
	Signed *envelope.Signed
	// Envelope is the verified envelope, or, when Err is set, what could be
	// decoded without trusting it (nil if nothing could).
	Envelope *envelope.Envelope
	// Err says why verification failed (wrapping ErrUnverified); nil when
	// the envelope passed every check a recipient makes before reading
	// attachments.
	Err error
}

// Verified reports whether the envelope passed verification.
func (s *StoredEnvelope) Verified() bool { return s.Err == nil && s.Envelope != nil }

// Recipient is the agency this copy was addressed to.
func (s *StoredEnvelope) Recipient() string {
	rs, _ := record.ParseSubject(s.Subject)
	to := rs.To
	return to
}

// ReadEnvelope reads the envelope copy stored at seq and verifies it as its
// recipient would. An envelope that fails verification is returned with
// Err set, not as an error: the caller decides what to show.
func (c *Client) ReadEnvelope(ctx context.Context, seq uint64) (*StoredEnvelope, error) {
	st, err := c.js.Stream(ctx, record.Stream)
	if err != nil {
		return nil, fmt.Errorf("read envelope #%d: open stream %s: %w", seq, record.Stream, err)
	}
	msg, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: no message #%d in the record", ErrNotFound, seq)
	}
	if err != nil {
		return nil, fmt.Errorf("read envelope #%d: %w", seq, err)
	}
	return c.storedOf(msg)
}

func (c *Client) storedOf(msg *jetstream.RawStreamMsg) (*StoredEnvelope, error) {
	rs, ok := record.ParseSubject(msg.Subject)
	kind, to := rs.Kind, rs.To
	if !ok || kind != "doc" {
		return nil, fmt.Errorf("%w: message #%d on %s is not an envelope copy", ErrNotFound, msg.Sequence, msg.Subject)
	}
	se := &StoredEnvelope{Seq: msg.Sequence, Subject: msg.Subject, Stored: msg.Time, Raw: msg.Data, Header: msg.Header}
	s, err := envelope.Open(msg.Data)
	if err == nil {
		se.Signed, se.Envelope = s, s.Envelope
		err = c.judgeStored(s, msg.Header, s.Envelope.From, msg.Time)
	} else if peeked, perr := envelope.Peek(msg.Data); perr == nil {
		se.Envelope = peeked
	}
	if err == nil {
		err = (&Mailbox{c: c, agency: to}).checkAddress(msg.Subject, s.Envelope)
	}
	if err != nil {
		se.Err = fmt.Errorf("%w: %w", ErrUnverified, err)
	}
	return se, nil
}

// PendingOptions bound one listing of a mailbox.
type PendingOptions struct {
	// After skips copies at or before this stream sequence: pass the Floor
	// of an earlier listing to skip what is known to be handled, or the
	// Seq of the last envelope of a page to read the next page.
	After uint64
	// Limit is the most envelopes returned (default 100).
	Limit int
}

// PendingResult is one page of a mailbox listing.
type PendingResult struct {
	Envelopes []*StoredEnvelope
	// Floor: every copy at or before it is handled (acknowledged or
	// refused), so later listings may start after it.
	Floor uint64
	// More is true when the listing stopped at Limit.
	More bool
}

// Pending lists the envelopes in agency's mailbox that its application
// has not acknowledged yet, oldest first, without consuming anything: the
// durable mailbox consumer is not touched. Each is verified (not its
// attachments); unverifiable ones are listed with Err set unless the
// recipient's side already refused them.
func (c *Client) Pending(ctx context.Context, agency string, o PendingOptions) (*PendingResult, error) {
	if o.Limit <= 0 {
		o.Limit = 100
	}
	cons, err := EnsureMailbox(ctx, c.js, agency)
	if err != nil {
		return nil, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("mailbox of %s: %w", agency, err)
	}
	st, err := c.js.Stream(ctx, record.Stream)
	if err != nil {
		return nil, fmt.Errorf("mailbox of %s: open stream %s: %w", agency, record.Stream, err)
	}
	floor := max(info.AckFloor.Stream, o.After)
	res := &PendingResult{Floor: floor}
	contiguous := true // every copy seen so far is handled
	filter := record.MailboxFilter(agency)
	for seq := floor + 1; ; {
		msg, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return res, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read mailbox of %s from #%d: %w", agency, seq, err)
		}
		seq = msg.Sequence + 1
		handled, se, err := c.pendingCopy(ctx, agency, msg)
		if err != nil {
			return nil, err
		}
		if handled {
			if contiguous {
				res.Floor = msg.Sequence
			}
			continue
		}
		contiguous = false
		if len(res.Envelopes) == o.Limit {
			res.More = true
			return res, nil
		}
		res.Envelopes = append(res.Envelopes, se)
	}
}

// pendingCopy reads one mailbox copy and tells whether the recipient's
// side has handled it already.
func (c *Client) pendingCopy(ctx context.Context, agency string, msg *jetstream.RawStreamMsg) (bool, *StoredEnvelope, error) {
	se, err := c.storedOf(msg)
	if err != nil {
		return false, nil, err
	}
	if se.Envelope == nil || !envelope.IsID(se.Envelope.ID) {
		return false, se, nil // cannot be named; shown so that it is not hidden
	}
	id := se.Envelope.ID
	if _, err := c.received.Get(ctx, record.ReceivedKey(agency, id)); err == nil {
		return true, se, nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil, fmt.Errorf("check received marker of %s for %s: %w", id, agency, err)
	}
	// A copy the mailbox refused is terminated without a marker; its
	// tracking says invalid. A copy that does not verify has no tracking
	// (it makes no state): Acknowledge leaves a refusal marker for it.
	if se.Err != nil {
		if _, err := c.received.Get(ctx, refusedKey(agency, msg.Sequence)); err == nil {
			return true, se, nil
		}
		return false, se, c.markListed(ctx, agency, id, msg.Sequence)
	}
	rs, _ := record.ParseSubject(msg.Subject)
	from := rs.From
	if c.track == nil {
		return false, se, nil // an agency client: no access to the bucket
	}
	if e, err := c.track.Get(ctx, record.TrackKey(from, id, agency)); err == nil {
		var t Tracking
		if json.Unmarshal(e.Value(), &t) == nil && t.State == envelope.StateInvalid {
			return true, se, nil
		}
	} else if errors.Is(err, jetstream.ErrKeyNotFound) {
		// Not tracked yet: acknowledging it at once finds it by the mark.
		if err := c.markListed(ctx, agency, id, msg.Sequence); err != nil {
			return false, nil, err
		}
	}
	// A copy the bus refused for the publish rate is not deliverable.
	if err := c.admit(ctx, agency, msg.Sequence); errors.Is(err, ErrReject) {
		return true, se, nil
	}
	return false, se, nil
}

// refusedKey marks, in the received-marker bucket, agency's copy at record
// sequence seq as refused by the recipient's side. It is keyed by the
// sequence, not the envelope id: the id of a copy that does not verify
// may be anyone's.
func refusedKey(agency string, seq uint64) string {
	return envelope.Token(agency) + ".refused-" + strconv.FormatUint(seq, 10)
}

// Acknowledgement tells what Acknowledge did.
type Acknowledgement struct {
	ID       string             `json:"id"`
	Seq      uint64             `json:"seq"`
	Digest   string             `json:"digest"`
	At       time.Time          `json:"at"`
	Envelope *envelope.Envelope `json:"-"`
	// Duplicate is true when the envelope had been acknowledged before;
	// nothing was sent again.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Acknowledge does for one envelope, named by id, what the mailbox does
// for each message it hands to the application, through the same receive
// path (receive.go): verify it, its address, limits and attachments (and
// the PDF policy and checks of opts), record it as received, and answer
// the sender with the signed delivered receipt; the agency's mailbox
// consumer later acks it as a duplicate. The client must hold agency's
// identity (or its system's). It is idempotent. An envelope that fails
// verification is refused as the mailbox refuses it (invalid receipt,
// quarantine) and the error wraps ErrUnverified.
func (c *Client) Acknowledge(ctx context.Context, agency, id string, opts ...MailboxOption) (*Acknowledgement, error) {
	if !envelope.IsID(id) {
		return nil, fmt.Errorf("acknowledge: %q is not an envelope id (a UUID)", id)
	}
	signer, err := c.Identity(agency)
	if err != nil {
		return nil, fmt.Errorf("acknowledge %s as %s: %w", id, agency, err)
	}
	se, err := c.findCopy(ctx, agency, id)
	if err != nil {
		return nil, fmt.Errorf("acknowledge %s as %s: %w", id, agency, err)
	}
	o := mailboxOptions{verifyAtt: true}
	for _, opt := range opts {
		opt(&o)
	}
	m := &Mailbox{c: c, agency: agency, id: signer, opts: o}
	ack := &Acknowledgement{ID: id, Seq: se.Seq, Digest: envelope.Digest(se.Raw), Envelope: se.Envelope}
	if rec, err := m.received(ctx, id); err == nil {
		// Marked before: finish the receipt, which a failure after the
		// marker may have left unsent (same receipt id: deduplicated).
		ack.Duplicate, ack.At = true, rec.At
		if rec.Digest == "" {
			rec.Digest = ack.Digest
		}
		if se.Envelope != nil && se.Err == nil {
			if err := m.receipt(ctx, se.Envelope, envelope.StateDelivered, rec.Digest, "", rec.Details); err != nil {
				return nil, fmt.Errorf("acknowledge %s as %s: send receipt: %w", id, agency, err)
			}
		}
		c.waitDelivered(ctx, o.ackWait, id, agency)
		return ack, nil
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("acknowledge %s as %s: check received marker: %w", id, agency, err)
	}
	s, err := m.verifyCopy(ctx, copyInHand{subject: se.Subject, header: se.Header, raw: se.Raw, seq: se.Seq, recorded: se.Stored})
	if errors.Is(err, ErrReject) {
		return nil, c.refuseCopy(ctx, m, se, fmt.Errorf("acknowledge %s as %s: %w: %w", id, agency, ErrUnverified, err))
	}
	if err != nil {
		return nil, fmt.Errorf("acknowledge %s as %s: %w", id, agency, err)
	}
	d := &Delivery{Envelope: s.Envelope, Signed: s, Digest: ack.Digest, Seq: se.Seq, Recipient: agency, mb: m}
	// Nothing is receipted whose content does not match its manifest.
	if err := m.attachmentsWhenGranted(ctx, d); err != nil {
		if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, filesvc.ErrForbidden) || errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("acknowledge %s as %s: %w", id, agency, err)
		}
		return nil, c.refuseCopy(ctx, m, se, fmt.Errorf("acknowledge %s as %s: %w: %w", id, agency, ErrUnverified, err))
	}
	if ack.At, err = m.accept(ctx, d); err != nil {
		// Acknowledging again finishes it from the marker.
		return nil, fmt.Errorf("acknowledge %s as %s: %w", id, agency, err)
	}
	ack.Envelope = s.Envelope
	c.waitDelivered(ctx, o.ackWait, id, agency)
	return ack, nil
}

// waitDelivered waits, for d at most, until (id, agency) is tracked as
// delivered (see WaitDelivered).
func (c *Client) waitDelivered(ctx context.Context, d time.Duration, id, agency string) {
	if d <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, _ = c.WaitState(ctx, id, agency, envelope.StateDelivered)
}

// refuseCopy does for a copy that fails the recipient's checks what the
// mailbox does: the sender gets the signed invalid receipt with the reason
// and the copy goes to quarantine, so an agency that only uses HTTP does
// not leave bad mail unanswered. The mailbox refusing it again later only
// repeats the same receipt and quarantine entry (deduplicated). It returns
// cause.
func (c *Client) refuseCopy(ctx context.Context, m *Mailbox, se *StoredEnvelope, cause error) error {
	if e := se.Envelope; e != nil && envelope.IsID(e.ID) && envelope.IsStandardCode(e.From) {
		if err := m.receipt(ctx, e, envelope.StateInvalid, envelope.Digest(se.Raw), cause.Error(), nil); err != nil {
			c.opts.logger.Warn("invalid receipt not sent", "envelope", e.ID, "err", err)
		}
	}
	if err := c.quarantine(ctx, m.agency, se.Subject, se.Raw, se.Seq, 0, cause.Error()); err != nil {
		c.opts.logger.Warn("copy not quarantined", "seq", se.Seq, "err", err)
	} else if se.Err != nil {
		// Listings skip it from now on (see pendingCopy).
		if _, err := c.received.Put(ctx, refusedKey(m.agency, se.Seq), []byte(time.Now().UTC().Format(time.RFC3339Nano))); err != nil {
			c.opts.logger.Warn("refused copy not marked", "seq", se.Seq, "err", err)
		}
	}
	return cause
}

// markListed records record.ListedKey for the bus's own client, which alone
// acknowledges by findCopy's index; an agency's client reads its mailbox.
func (c *Client) markListed(ctx context.Context, agency, id string, seq uint64) error {
	if c.track == nil {
		return nil
	}
	if _, err := c.received.Put(ctx, record.ListedKey(agency, id), []byte(strconv.FormatUint(seq, 10))); err != nil {
		return fmt.Errorf("mark copy #%d of %s listed for %s: %w", seq, id, agency, err)
	}
	return nil
}

// findCopy locates agency's copy of envelope id: through its tracking
// when the tracker has recorded it, otherwise by reading the mailbox.
// The bus's own client reads it only where the copy can be: at the
// sequence a listing marked (record.ListedKey), or among the copies from the
// sender the id is bound to; an id none of them knows is not in the
// mailbox, and is answered at once (an agency that only uses HTTP never
// moves its consumer's ack floor, so a scan would read its whole history).
func (c *Client) findCopy(ctx context.Context, agency, id string) (*StoredEnvelope, error) {
	if t, err := c.Tracking(ctx, id, agency); err == nil && t.Seq > 0 {
		return c.ReadEnvelope(ctx, t.Seq)
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	notFound := func() error { return fmt.Errorf("%w: %s in the mailbox of %s", ErrNotFound, id, agency) }
	filter := record.MailboxFilter(agency)
	var from uint64 // the first sequence the copy can be at
	if c.track != nil {
		if e, err := c.received.Get(ctx, record.ListedKey(agency, id)); err == nil {
			if seq, perr := strconv.ParseUint(string(e.Value()), 10, 64); perr == nil {
				se, err := c.ReadEnvelope(ctx, seq)
				if err == nil && se.Recipient() == agency && se.Envelope != nil && se.Envelope.ID == id {
					return se, nil
				}
				if err != nil && !errors.Is(err, ErrNotFound) {
					return nil, err
				}
			}
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("check listed marker of %s for %s: %w", id, agency, err)
		}
		sender, err := c.EnvelopeSender(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return nil, notFound()
		}
		if err != nil {
			return nil, err
		}
		// Bound, and agency's copy not tracked (yet): the copies of one
		// send are stored together, and each names every recipient.
		filter = record.DocSubject(agency, sender)
		if first, err := c.firstCopy(ctx, id); err != nil {
			return nil, err
		} else if first != nil {
			if first.Verified() && !slices.Contains(first.Envelope.To, agency) {
				return nil, notFound()
			}
			from = first.Seq
		}
	}
	st, err := c.js.Stream(ctx, record.Stream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", record.Stream, err)
	}
	cons, err := EnsureMailbox(ctx, c.js, agency)
	if err != nil {
		return nil, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("mailbox of %s: %w", agency, err)
	}
	for seq := max(info.AckFloor.Stream+1, from); ; {
		msg, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, notFound()
		}
		if err != nil {
			return nil, fmt.Errorf("read mailbox of %s from #%d: %w", agency, seq, err)
		}
		seq = msg.Sequence + 1
		if e, err := envelope.Peek(msg.Data); err == nil && e.ID == id {
			return c.storedOf(msg)
		}
	}
}

// firstCopy reads the tracked copy of envelope id with the lowest record
// sequence, or nil when none is tracked.
func (c *Client) firstCopy(ctx context.Context, id string) (*StoredEnvelope, error) {
	ds, _, err := c.StatusFor(ctx, id, "")
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var seq uint64
	for _, t := range ds.Recipients {
		if t.Seq > 0 && (seq == 0 || t.Seq < seq) {
			seq = t.Seq
		}
	}
	if seq == 0 {
		return nil, nil
	}
	se, err := c.ReadEnvelope(ctx, seq)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return se, err
}
