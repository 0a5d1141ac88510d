package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// Status from the record: the tracker follows the record a moment behind,
// and not at all while every `docaxis serve` is down; an envelope stored in
// that time is on record but not yet tracked. Rather than "not found", its
// status is read from the copies themselves, each verified as the tracker
// would verify it, and shown as sent with a note.

// NoteTrackingBehind is DocumentStatus.Note for a status read from the
// record because the tracker has not reached the envelope yet.
const NoteTrackingBehind = "tracking is catching up: the envelope is on record, its receipts and statuses are not counted yet"

// recordScanLimit bounds the copies a status reads past the tracker's
// position: a tracker so far behind is an outage to report, not to scan.
var recordScanLimit uint64 = 500_000

// statusOrRecord is StatusFor's fallback to the record for an envelope
// for an envelope the tracker has not reached (notFound is StatusFor's
// own answer, kept when the record has no copy either).
func (c *Client) statusOrRecord(ctx context.Context, id, viewer string, notFound error) (*DocumentStatus, string, error) {
	if c.opts.agency != "" {
		return nil, "", notFound // an agency client cannot read the record: the bus answers for it
	}
	ds, role, err := c.statusFromRecord(ctx, id, viewer)
	if err != nil {
		c.opts.logger.Debug("status from the record", "envelope", id, "err", err)
		return nil, "", notFound
	}
	if ds == nil {
		return nil, "", notFound
	}
	return ds, role, nil
}

// statusFromRecord reads the copies of envelope id stored after the
// tracker's position and returns them as sent, as viewer may see them (see
// StatusFor); nil when there is none.
func (c *Client) statusFromRecord(ctx context.Context, id, viewer string) (*DocumentStatus, string, error) {
	stream, err := c.js.Stream(ctx, StreamName)
	if err != nil {
		return nil, "", fmt.Errorf("open the record: %w", err)
	}
	last := stream.CachedInfo().State.LastSeq
	start := uint64(1)
	if tr, err := stream.Consumer(ctx, TrackerDurable); err == nil {
		start = tr.CachedInfo().AckFloor.Stream + 1
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, "", fmt.Errorf("read the tracker's position: %w", err)
	}
	if start > last {
		return nil, "", nil // the tracker has read everything: not on record
	}
	if last-start >= recordScanLimit {
		return nil, "", fmt.Errorf("tracker %d copies behind, more than %d", last-start+1, recordScanLimit)
	}
	seqs, err := c.copiesAfter(ctx, stream, id, start, last)
	if err != nil || len(seqs) == 0 {
		return nil, "", err
	}
	bound, err := c.EnvelopeSender(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, "", err
	}
	ds := &DocumentStatus{ID: id, Sender: bound, Note: NoteTrackingBehind}
	for _, seq := range seqs {
		msg, err := stream.GetMsg(ctx, seq)
		if err != nil {
			return nil, "", fmt.Errorf("read copy #%d of %s: %w", seq, id, err)
		}
		kind, to, from, ok := parseSubject(msg.Subject)
		if !ok || kind != "doc" {
			continue
		}
		s, err := envelope.Open(msg.Data)
		if err == nil {
			err = c.verifier.Check(s, signing.At(c.recordedAt(msg.Header, from, msg.Time)))
		}
		if err != nil {
			continue // unverified: it names nobody, as for the tracker
		}
		e := s.Envelope
		if e.ID != id || e.Kind == envelope.KindStatus || e.From != from || !slices.Contains(e.To, to) {
			continue
		}
		if ds.Sender == "" {
			ds.Sender = from // the first verified copy binds the id
		}
		if from != ds.Sender || slices.ContainsFunc(ds.Recipients, func(t Tracking) bool { return t.Recipient == to }) {
			continue
		}
		if viewer != "" && viewer != from && viewer != to {
			continue
		}
		at := msg.Time.UTC()
		t := Tracking{Envelope: id, Sender: from, Recipient: to, Kind: e.Kind, Refers: e.Refers, Subject: e.Subject,
			Created: e.Created, Digest: s.Digest(), Seq: seq, State: envelope.StateSent, Updated: at,
			Reason: NoteTrackingBehind, History: []Event{{State: envelope.StateSent, At: at, By: from, Seq: seq}}}
		if e.Document != nil {
			t.DueDate = e.Document.DueDate
		}
		ds.Subject, ds.Created, ds.DueDate = t.Subject, t.Created, t.DueDate
		ds.Recipients = append(ds.Recipients, t)
	}
	if len(ds.Recipients) == 0 {
		return nil, "", nil
	}
	sortRecipients(ds)
	role := "recipient"
	if viewer == "" || viewer == ds.Sender {
		role = "sender"
	}
	return ds, role, nil
}

// copiesAfter lists the record sequences in [start, last] of the document
// copies of envelope id, reading headers only.
func (c *Client) copiesAfter(ctx context.Context, stream jetstream.Stream, id string, start, last uint64) ([]uint64, error) {
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"axis.doc.>"}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq: start, HeadersOnly: true,
	})
	if err != nil {
		return nil, fmt.Errorf("read the record from #%d: %w", start, err)
	}
	var seqs []uint64
	prefix := id + "."
	for {
		batch, err := cons.Fetch(1024, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("read the record from #%d: %w", start, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			if meta.Sequence.Stream > last {
				return seqs, nil
			}
			if msg.Headers().Get(HeaderEnvelope) == id || strings.HasPrefix(msg.Headers().Get(jetstream.MsgIDHeader), prefix) {
				seqs = append(seqs, meta.Sequence.Stream)
			}
			if meta.Sequence.Stream == last || meta.NumPending == 0 {
				return seqs, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
			return nil, fmt.Errorf("read the record from #%d: %w", start, err)
		}
		if n == 0 {
			// An empty fetch is the end only when nothing is pending: a
			// cluster just back from a failover may take longer than one
			// fetch to deliver the first copies.
			if info, err := cons.Info(ctx); err == nil && info.NumPending == 0 {
				return seqs, nil
			}
			if ctx.Err() != nil {
				return seqs, ctx.Err()
			}
		}
	}
}
