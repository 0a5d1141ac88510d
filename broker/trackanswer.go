package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// trackListDefault is the page of a list request that names no limit.
const trackListDefault = 500

// AnswerTracking answers agency's tracking request op from its own pairs
// only, as the bus's tracking service does (package bus): every
// recipient's as the sender, its own pair alone as a recipient, and
// ErrNotFound for anything else. budget bounds the bytes of the entries
// of one answer. The bus's own client only: it reads the tracking bucket.
func (c *Client) AnswerTracking(ctx context.Context, agency, op string, req TrackRequest, budget int) (*TrackReply, error) {
	limit := req.Limit
	if limit == 0 {
		limit = trackListDefault
	}
	switch op {
	case record.TrackOpPing:
		return &TrackReply{}, nil
	case record.TrackOpStatus:
		ds, role, next, err := c.statusPage(ctx, req.ID, agency, req.After)
		if errors.Is(err, ErrNotFound) && req.After == 0 {
			ds, role, err = c.statusOrRecord(ctx, req.ID, agency, err) // not tracked yet? (status_record.go)
		}
		if err != nil {
			return nil, err
		}
		if n := fitReply(budget, len(ds.Recipients), func(i int) any { return &ds.Recipients[i] }); n < len(ds.Recipients) {
			next = ds.Recipients[n-1].Revision
			ds.Recipients = ds.Recipients[:n]
		}
		return &TrackReply{Status: ds, Role: role, Next: next}, nil
	case record.TrackOpTracking:
		t, err := c.trackingFor(ctx, req.ID, req.Recipient, agency)
		if err != nil {
			return nil, err
		}
		return &TrackReply{Tracking: t}, nil
	case record.TrackOpSent, record.TrackOpReceived:
		tok := envelope.Token(agency)
		pattern := tok + ".*.*"
		if op == record.TrackOpReceived {
			pattern = "*.*." + tok
		}
		page, err := c.readTrackPage(ctx, pattern, req.After, limit, budget)
		if err != nil {
			return nil, err
		}
		rep := &TrackReply{Next: page.Next, Entries: []*Tracking{}}
		for _, t := range page.Entries {
			if t.Seq == 0 || (op == record.TrackOpSent && t.Sender != agency) || (op == record.TrackOpReceived && t.Recipient != agency) {
				continue
			}
			rep.Entries = append(rep.Entries, t)
		}
		if n := fitReply(budget, len(rep.Entries), func(i int) any { return rep.Entries[i] }); n < len(rep.Entries) {
			rep.Next = rep.Entries[n-1].Revision
			rep.Entries = rep.Entries[:n]
		}
		return rep, nil
	case record.TrackOpStatuses:
		return c.trackStatuses(ctx, agency, req, limit, budget)
	case record.TrackOpCopy:
		// Only about agency's own subject: the answer tells nothing of
		// another's message but that it is not agency's copy.
		if err := c.checkDuplicate(ctx, record.DocSubject(req.Recipient, agency), req.Seq); err != nil {
			return nil, err
		}
		return &TrackReply{}, nil
	}
	return nil, fmt.Errorf("%w: unknown operation %q", ErrTrackRequest, op)
}

// fitReply returns how many of n items fit in budget bytes (at least one).
func fitReply(budget, n int, item func(i int) any) int {
	total := 0
	for i := 0; i < n; i++ {
		b, err := json.Marshal(item(i))
		if err != nil {
			continue
		}
		total += len(b) + 1
		if total > budget && i > 0 {
			return i
		}
	}
	return n
}

// trackStatuses answers a page of the signed statuses on record for envelope
// id that agency may see (those of its own pairs), in record order after
// the record sequence req.After.
func (c *Client) trackStatuses(ctx context.Context, agency string, req TrackRequest, limit, budget int) (*TrackReply, error) {
	ds, _, err := c.StatusFor(ctx, req.ID, agency)
	if err != nil {
		return nil, err
	}
	type ref struct {
		recipient string
		seq       uint64
	}
	var refs []ref
	for _, r := range ds.Recipients {
		for _, ev := range r.History {
			if ev.Status == "" || ev.Seq == 0 || ev.Seq <= req.After || ev.State == envelope.StateRecallRequested {
				continue
			}
			refs = append(refs, ref{r.Recipient, ev.Seq})
		}
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].seq < refs[j].seq })
	st, err := c.js.Stream(ctx, record.Stream)
	if err != nil {
		return nil, fmt.Errorf("statuses of %s: %w", req.ID, err)
	}
	rep := &TrackReply{Statuses: []StatusRecord{}}
	size := 0
	for i, r := range refs {
		if i == limit {
			rep.Next = refs[i-1].seq
			break
		}
		msg, err := st.GetMsg(ctx, r.seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // expired from the record: left out
		}
		if err != nil {
			return nil, fmt.Errorf("read status #%d of %s: %w", r.seq, req.ID, err)
		}
		add := (len(msg.Data)+2)/3*4 + 256 // base64 in JSON, and the fields
		if i > 0 && size+add > budget {
			rep.Next = refs[i-1].seq
			break
		}
		rep.Statuses = append(rep.Statuses, StatusRecord{Recipient: r.recipient, Seq: r.seq, Time: msg.Time,
			Recorded: msg.Header.Get(record.HeaderRecorded), Raw: msg.Data})
		size += add
	}
	return rep, nil
}
