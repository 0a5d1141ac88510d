package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
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

// ErrRecordUnread: the status of an envelope the tracker has not reached
// could not be read from the record now; the envelope may be on record, so
// this is not ErrNotFound. Asking again is the remedy.
var ErrRecordUnread = errors.New("status not known yet: the record could not be read now; ask again")

// statusOrRecord is StatusFor's fallback for an envelope its tracking
// reads did not show (notFound is StatusFor's own answer). "Not found"
// stands only when sources that cannot be behind say so: the copies the
// tracker has not reached, scanned up to the leader's last copy, and the
// id's binding and tracking read through their leaders (a direct get of
// a replica catching up answers "no key" for a key the bus holds).
func (c *Client) statusOrRecord(ctx context.Context, id, viewer string, notFound error) (*DocumentStatus, string, error) {
	if c.opts.agency != "" {
		return nil, "", notFound // an agency client cannot read the record: the bus answers for it
	}
	ds, role, err := c.statusFromRecord(ctx, id, viewer)
	if err == nil && ds == nil {
		ds, role, err = c.statusFromLeader(ctx, id, viewer)
	}
	if err != nil {
		if viewer != "" {
			// An agency is told no more than that: what failed reading the
			// record (sequences, whose copies) is not its to know.
			c.opts.logger.Warn("status from the record", "envelope", id, "viewer", viewer, "err", err)
			return nil, "", fmt.Errorf("status of %s: %w", id, ErrRecordUnread)
		}
		return nil, "", fmt.Errorf("status of %s: %w: %w", id, ErrRecordUnread, err)
	}
	if ds == nil {
		return nil, "", notFound
	}
	return ds, role, nil
}

// statusFromLeader reads envelope id's binding and tracking through their
// leaders, as StatusFor does through any replica, for viewer (see
// StatusFor); nil when the id is not bound or viewer has no pair.
func (c *Client) statusFromLeader(ctx context.Context, id, viewer string) (*DocumentStatus, string, error) {
	v, bound, err := c.leaderKey(ctx, record.IDsBucket, id)
	if err != nil || !bound {
		return nil, "", err
	}
	sender := string(v)
	role, pattern := "sender", envelope.Token(sender)+"."+id+".*"
	if viewer != "" && viewer != sender {
		role, pattern = "recipient", record.TrackKey(sender, id, viewer)
	}
	ds := &DocumentStatus{ID: id, Sender: sender}
	subject := record.KVSubject(record.TrackBucket, pattern)
	for seq := uint64(1); ; {
		m, err := c.leaderGet(ctx, record.KVStream(record.TrackBucket), leaderGetRequest{Seq: seq, NextFor: subject})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, "", fmt.Errorf("read tracking of %s: %w", id, err)
		}
		seq = m.Sequence + 1
		if op := m.Header.Get("KV-Operation"); op != "" || len(m.Data) == 0 {
			continue // a deleted or purged pair
		}
		t, err := decodeTrackingAt(strings.TrimPrefix(m.Subject, record.KVSubject(record.TrackBucket, "")), m.Data, m.Sequence)
		if err != nil {
			return nil, "", err
		}
		if t.Seq == 0 || t.Sender != sender || t.Envelope != id || (role == "recipient" && t.Recipient != viewer) {
			continue // only pairs a verified copy of the bound sender made, and the viewer's own
		}
		if ds.Subject == "" {
			ds.Subject, ds.Created, ds.DueDate = t.Subject, t.Created, t.DueDate
		}
		ds.Recipients = append(ds.Recipients, *t)
	}
	if len(ds.Recipients) == 0 {
		return nil, "", nil
	}
	sortRecipients(ds)
	return ds, role, nil
}

// statusFromRecord reads the copies of envelope id stored after the
// tracker's position and returns them as sent, as viewer may see them (see
// StatusFor); nil when there is none.
func (c *Client) statusFromRecord(ctx context.Context, id, viewer string) (*DocumentStatus, string, error) {
	stream, err := c.js.Stream(ctx, record.Stream)
	if err != nil {
		return nil, "", fmt.Errorf("open the record: %w", err)
	}
	// The end of the scan is the leader's last copy: a copy stored before
	// the question is at or before it.
	lastCopy, err := c.leaderGet(ctx, record.Stream, leaderGetRequest{LastFor: record.DocPrefix + ">"})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, "", nil // no copy on record at all
	}
	if err != nil {
		return nil, "", fmt.Errorf("read the record's last copy: %w", err)
	}
	last := lastCopy.Sequence
	start := uint64(1)
	if tr, err := stream.Consumer(ctx, record.TrackerDurable); err == nil {
		start = tr.CachedInfo().AckFloor.Stream + 1
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, "", fmt.Errorf("read the tracker's position: %w", err)
	}
	if start > last {
		return nil, "", nil // the tracker has read every copy
	}
	if last-start >= recordScanLimit {
		return nil, "", fmt.Errorf("tracker %d messages behind, more than %d", last-start+1, recordScanLimit)
	}
	seqs, err := c.copiesAfter(ctx, stream, id, start, last)
	if err != nil || len(seqs) == 0 {
		return nil, "", err
	}
	var bound string
	if v, ok, err := c.leaderKey(ctx, record.IDsBucket, id); err != nil {
		return nil, "", fmt.Errorf("read sender of %s: %w", id, err)
	} else if ok {
		bound = string(v)
	}
	ds := &DocumentStatus{ID: id, Sender: bound, Note: NoteTrackingBehind}
	for _, seq := range seqs {
		msg, err := c.leaderGet(ctx, record.Stream, leaderGetRequest{Seq: seq})
		if err != nil {
			return nil, "", fmt.Errorf("read copy #%d of %s: %w", seq, id, err)
		}
		rs, ok := record.ParseSubject(msg.Subject)
		kind, to, from := rs.Kind, rs.To, rs.From
		if !ok || kind != "doc" {
			continue
		}
		s, err := envelope.Open(msg.Data)
		if err == nil {
			err = c.judgeStored(s, msg.Header, from, msg.Time)
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
// copies of envelope id, reading headers only; last is a copy's sequence
// the leader gave. The ordered consumer lives on one replica, which may be
// behind the leader: its "nothing pending" is not the end; the end is
// seeing last, or the leader saying no copy is left up to it.
func (c *Client) copiesAfter(ctx context.Context, stream jetstream.Stream, id string, start, last uint64) ([]uint64, error) {
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{record.DocPrefix + ">"}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq: start, HeadersOnly: true,
	})
	if err != nil {
		return nil, fmt.Errorf("read the record from #%d: %w", start, err)
	}
	defer c.dropOrdered(cons)
	var seqs []uint64
	prefix := id + "."
	seen := start - 1 // the highest sequence read
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
			seq := meta.Sequence.Stream
			if seq > last {
				return seqs, nil
			}
			seen = max(seen, seq)
			if msg.Headers().Get(record.HeaderEnvelope) == id || strings.HasPrefix(msg.Headers().Get(jetstream.MsgIDHeader), prefix) {
				seqs = append(seqs, seq)
			}
			if seq == last {
				return seqs, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
			return nil, fmt.Errorf("read the record from #%d: %w", start, err)
		}
		if n > 0 {
			continue
		}
		// Nothing more on this replica. Done if the leader has no copy
		// after the last one read up to last (it was removed since);
		// otherwise the replica is catching up: fetch again.
		next, err := c.leaderGet(ctx, record.Stream, leaderGetRequest{Seq: seen + 1, NextFor: record.DocPrefix + ">"})
		if errors.Is(err, jetstream.ErrMsgNotFound) || err == nil && next.Sequence > last {
			return seqs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read the record from #%d: %w", start, err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read the record from #%d: the replica read is at #%d, the leader's copy #%d: %w", start, seen, next.Sequence, ctx.Err())
		}
		c.opts.logger.Debug("status from the record: the replica read is behind the leader", "at", seen, "leader", next.Sequence)
	}
}

// dropOrdered deletes an ordered consumer once read rather than leave it
// to its inactivity threshold (one per status asked).
func (c *Client) dropOrdered(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil || info.Name == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.timeout)
	defer cancel()
	if err := c.js.DeleteConsumer(ctx, record.Stream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		c.opts.logger.Debug("delete the record reader", "consumer", info.Name, "err", err)
	}
}
