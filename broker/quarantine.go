package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The quarantine is written by the bus alone: an agency asks the bus's
// quarantine service (quarantinesvc.go) to quarantine a copy of its own
// mailbox by record sequence, and the bus writes the entry with headers it
// derives from the record. A retry re-drives exactly the record message the
// entry points to, never what the entry itself says.

// Quarantined is a message that could not be processed, kept with its
// reason until it is re-driven.
type Quarantined struct {
	Seq        uint64    `json:"seq"` // sequence in the quarantine stream
	Agency     string    `json:"agency"`
	Envelope   string    `json:"envelope,omitempty"`
	Reason     string    `json:"reason"`
	Deliveries int       `json:"deliveries"`
	Subject    string    `json:"subject"`    // where it came from
	OriginSeq  uint64    `json:"origin_seq"` // its sequence in the record
	Time       time.Time `json:"time"`
	Size       int       `json:"size"`
}

// FederationQuarantine is the agency under which the federation service
// quarantines what it refused (axis.quarantine.federation).
const FederationQuarantine = record.FederationBox

// MaxQuarantineReason bounds the reason of a quarantine entry, in bytes.
const MaxQuarantineReason = record.MaxQuarantineReason

var (
	// ErrNotQuarantined: nothing in quarantine under that id.
	ErrNotQuarantined = errors.New("no such quarantined message")
	// ErrAmbiguous: several quarantine entries hold that envelope id; name
	// the one to retry by its quarantine sequence.
	ErrAmbiguous = errors.New("several quarantined messages match")
	// ErrNotInRecord: a quarantine entry does not point to a copy of its
	// agency's mailbox in the record that holds the same bytes (written
	// before the quarantine was the bus's alone, or the record message is
	// gone), so it cannot be re-driven.
	ErrNotInRecord = errors.New("quarantined message does not point into the record")
	// ErrFederationEntry: the entry was quarantined by the federation
	// service; it is re-driven through that service (federation.Retry).
	ErrFederationEntry = errors.New("quarantined by the federation service")
	// ErrQuarantineRefused: the bus refused a quarantine request (not a
	// copy of the agency's own mailbox, or malformed).
	ErrQuarantineRefused = errors.New("quarantine request refused by the bus")
)

// QuarantineList lists quarantined messages, of one agency or all ("").
func (c *Client) QuarantineList(ctx context.Context, agency string) ([]Quarantined, error) {
	filter := record.QuarantineFilter
	if agency != "" {
		filter = record.QuarantineSubject(agency)
	}
	s, err := c.js.Stream(ctx, record.QuarantineStream)
	if err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	var out []Quarantined
	if info.State.Msgs == 0 {
		return out, nil
	}
	// The server drops the consumer soon after the listing: listings
	// polled in a loop must not pile up consumers. Headers only: an entry
	// is described by its headers, and an agency can fill the quarantine
	// with copies of a MiB each.
	cons, err := c.js.OrderedConsumer(ctx, record.QuarantineStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, InactiveThreshold: 10 * time.Second, HeadersOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	last := info.State.LastSeq
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("read quarantine: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			size, _ := strconv.Atoi(msg.Headers().Get(nats.MsgSize)) // the stored entry's, sent in place of its data
			out = append(out, quarantinedOf(msg.Subject(), msg.Headers(), size, meta.Sequence.Stream, meta.Timestamp))
			if meta.Sequence.Stream >= last {
				return out, nil
			}
		}
		if n == 0 {
			return out, batch.Error()
		}
	}
}

// quarantinedOf describes an entry. The agency is the one its subject
// names: entries written before the quarantine was the bus's alone carry
// headers their agency chose, but only ever on its own subject.
func quarantinedOf(subject string, h nats.Header, size int, seq uint64, at time.Time) Quarantined {
	agency, _ := record.QuarantineAgency(subject)
	q := Quarantined{Seq: seq, Agency: agency,
		Envelope: h.Get(record.HeaderEnvelope), Reason: h.Get(record.HeaderReason), Subject: h.Get(record.HeaderOriginSubject), Time: at.UTC(), Size: size}
	q.Deliveries, _ = strconv.Atoi(h.Get(record.HeaderDeliveries))
	q.OriginSeq, _ = strconv.ParseUint(h.Get(record.HeaderOriginSeq), 10, 64)
	return q
}

// QuarantineEntry reads one quarantine entry by its quarantine sequence,
// or by envelope id when exactly one entry holds that id.
func (c *Client) QuarantineEntry(ctx context.Context, id string) (*Quarantined, error) {
	_, q, err := c.quarantineEntry(ctx, id)
	return q, err
}

func (c *Client) quarantineEntry(ctx context.Context, id string) (*jetstream.RawStreamMsg, *Quarantined, error) {
	s, err := c.js.Stream(ctx, record.QuarantineStream)
	if err != nil {
		return nil, nil, fmt.Errorf("quarantine entry %s: %w", id, err)
	}
	seq, perr := strconv.ParseUint(id, 10, 64)
	if perr != nil {
		list, err := c.QuarantineList(ctx, "")
		if err != nil {
			return nil, nil, err
		}
		var seqs []string
		for _, q := range list {
			if q.Envelope == id {
				seq = q.Seq
				seqs = append(seqs, strconv.FormatUint(q.Seq, 10))
			}
		}
		switch len(seqs) {
		case 0:
			return nil, nil, fmt.Errorf("%w: %s", ErrNotQuarantined, id)
		case 1:
		default:
			return nil, nil, fmt.Errorf("%w: envelope %s is in quarantine %d times (quarantine seq %s): name one by its seq", ErrAmbiguous, id, len(seqs), strings.Join(seqs, ", "))
		}
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotQuarantined, id)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("quarantine entry %s: %w", id, err)
	}
	if !strings.HasPrefix(raw.Subject, record.QuarantinePrefix) {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotQuarantined, id)
	}
	q := quarantinedOf(raw.Subject, raw.Header, len(raw.Data), raw.Sequence, raw.Time)
	return raw, &q, nil
}

// QuarantineRetry re-drives a quarantined message after a fix (a trusted
// root added, an attachment restored, the application repaired): the
// record message the entry points to is stored again, with its bytes and
// on its subject, in the mailbox it came from, and only then is the entry
// removed. id is the quarantine sequence, or the envelope id when exactly
// one entry holds it. An entry that does not point to a copy of its
// agency's mailbox holding the same bytes is refused (ErrNotInRecord);
// entries of the federation are re-driven by the federation service
// (ErrFederationEntry).
func (c *Client) QuarantineRetry(ctx context.Context, id string) (*Quarantined, error) {
	raw, q, err := c.quarantineEntry(ctx, id)
	if err != nil {
		return nil, err
	}
	if q.Agency == FederationQuarantine {
		return q, fmt.Errorf("retry %s: quarantine seq %d: %w: retry it with `docaxis quarantine retry` against a bus running the federation", id, q.Seq, ErrFederationEntry)
	}
	rec, err := c.recordOf(ctx, raw, q)
	if err != nil {
		return q, fmt.Errorf("retry %s: %w", id, err)
	}
	msg := &nats.Msg{Subject: rec.Subject, Data: rec.Data, Header: nats.Header{}}
	// The record's own headers travel again (a copy from another bus keeps
	// its trace and the time its first bus recorded it); the server's are
	// set anew, and a fresh dedup id is needed: the original one may still
	// be within the window.
	for k, v := range rec.Header {
		if !strings.HasPrefix(k, "Nats-") {
			msg.Header[k] = append([]string(nil), v...)
		}
	}
	msg.Header.Set(jetstream.MsgIDHeader, record.RetryMsgID(q.Seq, q.Agency))
	if _, err := c.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(record.Stream)); err != nil {
		return q, fmt.Errorf("retry %s: re-publish record #%d to %s: %w", id, rec.Sequence, rec.Subject, err)
	}
	s, err := c.js.Stream(ctx, record.QuarantineStream)
	if err == nil {
		err = s.DeleteMsg(ctx, q.Seq)
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return q, fmt.Errorf("retry %s: re-driven, but not removed from quarantine: %w", id, err)
	}
	return q, nil
}

// recordOf reads the record message an entry points to and checks that the
// entry is a faithful copy of a message of its agency's mailbox.
func (c *Client) recordOf(ctx context.Context, raw *jetstream.RawStreamMsg, q *Quarantined) (*jetstream.RawStreamMsg, error) {
	if q.OriginSeq == 0 {
		return nil, fmt.Errorf("%w: quarantine seq %d has no valid origin sequence (header %s is %q): inspect it, resend the document, then drop the entry",
			ErrNotInRecord, q.Seq, record.HeaderOriginSeq, raw.Header.Get(record.HeaderOriginSeq))
	}
	st, err := c.js.Stream(ctx, record.Stream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", record.Stream, err)
	}
	rec, err := st.GetMsg(ctx, q.OriginSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: quarantine seq %d points to record #%d, which is no longer in the record", ErrNotInRecord, q.Seq, q.OriginSeq)
	}
	if err != nil {
		return nil, fmt.Errorf("read record #%d: %w", q.OriginSeq, err)
	}
	if !record.InMailbox(rec.Subject, q.Agency) {
		return nil, fmt.Errorf("%w: quarantine seq %d of %s points to record #%d on %s, not a copy in the mailbox of %s",
			ErrNotInRecord, q.Seq, q.Agency, q.OriginSeq, rec.Subject, q.Agency)
	}
	if q.Subject != "" && q.Subject != rec.Subject {
		return nil, fmt.Errorf("%w: quarantine seq %d says it came from %s, record #%d is on %s", ErrNotInRecord, q.Seq, q.Subject, q.OriginSeq, rec.Subject)
	}
	if !bytes.Equal(raw.Data, rec.Data) {
		return nil, fmt.Errorf("%w: quarantine seq %d holds %d bytes that differ from record #%d (%d bytes)", ErrNotInRecord, q.Seq, len(raw.Data), q.OriginSeq, len(rec.Data))
	}
	return rec, nil
}

// QuarantineDrop removes a quarantine entry for good (one that cannot be
// re-driven, once inspected). id is as for QuarantineRetry.
func (c *Client) QuarantineDrop(ctx context.Context, id string) (*Quarantined, error) {
	_, q, err := c.quarantineEntry(ctx, id)
	if err != nil {
		return nil, err
	}
	s, err := c.js.Stream(ctx, record.QuarantineStream)
	if err == nil {
		err = s.DeleteMsg(ctx, q.Seq)
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return q, fmt.Errorf("drop quarantine seq %d: %w", q.Seq, err)
	}
	return q, nil
}
