package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
	"github.com/nats-io/nats.go/jetstream"
)

// Tracking is the state of one (envelope, recipient) pair, as the bus's
// tracker keeps it from the record.
type Tracking struct {
	Envelope  string         `json:"envelope"`
	Sender    string         `json:"sender"`
	Recipient string         `json:"agency"`
	Kind      envelope.Kind  `json:"kind,omitempty"`
	Refers    string         `json:"refers,omitempty"`
	Subject   string         `json:"subject,omitempty"`
	Created   time.Time      `json:"created"`
	DueDate   string         `json:"due_date,omitempty"`
	Digest    string         `json:"digest,omitempty"`
	Seq       uint64         `json:"seq,omitempty"`
	State     envelope.State `json:"state"`
	Code      string         `json:"code,omitempty"`
	Updated   time.Time      `json:"updated"`
	Reason    string         `json:"reason,omitempty"`
	Overdue   bool           `json:"overdue,omitempty"`
	// Details from the delivered receipt (e.g. PDF signature checks).
	Details map[string]any `json:"details,omitempty"`
	// UpdatedBy / ReplacedBy name the envelopes that updated or replaced
	// this one.
	UpdatedBy  []string `json:"updated_by,omitempty"`
	ReplacedBy []string `json:"replaced_by,omitempty"`
	History    []Event  `json:"history"`
	// Refused keeps statuses that arrived but were not allowed from the
	// state at the time: they are on record, so they are shown, not hidden.
	Refused []Event `json:"refused,omitempty"`
	// Revision of the tracking entry (for watchers).
	Revision uint64 `json:"revision,omitempty"`
}

// Event is one step of a pair's history.
type Event struct {
	State  envelope.State  `json:"state"`
	Code   string          `json:"code,omitempty"`
	At     time.Time       `json:"at"`
	By     string          `json:"by,omitempty"`
	Note   string          `json:"note,omitempty"`
	Reason string          `json:"reason,omitempty"`
	Staff  *envelope.Staff `json:"staff,omitempty"`
	Status string          `json:"status,omitempty"` // id of the signed status envelope
	Seq    uint64          `json:"seq,omitempty"`
	// Recorded is when the bus recorded a status (its record message's
	// time). At is the created time the reporter signed into it, which
	// the verifier lets it date back (signing.MaxBackdate): what the bus
	// measures by (delivery times, retention) counts from Recorded.
	Recorded time.Time `json:"recorded,omitzero"`
}

// RecordedAt is when the bus recorded ev, an event of t: its Recorded
// time or, on an entry written before that was kept, its At but never
// before the copy was recorded (a reporter's claim cannot go further
// back).
func (t *Tracking) RecordedAt(ev Event) time.Time {
	if !ev.Recorded.IsZero() {
		return ev.Recorded
	}
	for _, e := range t.History {
		if e.State == envelope.StateSent {
			if ev.At.Before(e.At) {
				return e.At
			}
			break
		}
	}
	return ev.At
}

// reached tells whether the pair is at state or went through it.
func (t *Tracking) reached(st envelope.State) bool {
	return t.State == st || !t.Reached(st).IsZero()
}

// Applied tells whether the pair's history has the signed status statusID
// (Event.Status).
func (t *Tracking) Applied(statusID string) bool {
	return slices.ContainsFunc(t.History, func(e Event) bool { return e.Status == statusID })
}

// Reached is when the bus recorded the pair's first event of state st
// (RecordedAt), zero if it has none.
func (t *Tracking) Reached(st envelope.State) time.Time {
	for _, e := range t.History {
		if e.State == st {
			return t.RecordedAt(e)
		}
	}
	return time.Time{}
}

// DocumentStatus is an envelope's tracking across all its recipients.
type DocumentStatus struct {
	ID         string     `json:"id"`
	Sender     string     `json:"sender"`
	Subject    string     `json:"subject"`
	Created    time.Time  `json:"created"`
	DueDate    string     `json:"due_date,omitempty"`
	Recipients []Tracking `json:"recipients"`
	// Note says when the status was read from the record because the
	// tracker has not reached the envelope yet (NoteTrackingBehind).
	Note string `json:"note,omitempty"`
}

func decodeTracking(e jetstream.KeyValueEntry) (*Tracking, error) {
	return decodeTrackingAt(e.Key(), e.Value(), e.Revision())
}

// OverdueAt tells whether the pair is past its due date at now and not
// finished: what readers see as Overdue.
func (t *Tracking) OverdueAt(now time.Time) bool { return overdue(t, now) }

func overdue(t *Tracking, now time.Time) bool {
	if t.DueDate == "" {
		return false
	}
	switch t.State {
	case envelope.StateDone, envelope.StateRejected, envelope.StateInvalid, envelope.StateRecallAccepted:
		return false
	}
	due, err := time.ParseInLocation("2006-01-02", t.DueDate, edxml.Vietnam) // due dates are calendar days in Vietnam
	if err != nil {
		return false
	}
	return now.After(due.Add(24 * time.Hour))
}

// Status returns the tracking of envelope id for every recipient of the
// sender the id is bound to (the first verified copy's): entries of other
// senders reusing the id are never merged in. A client connected as an
// agency asks the bus's tracking service, which answers from that
// agency's own pairs: every recipient's as the sender, its own pair alone
// as a recipient, and ErrNotFound for anything else.
func (c *Client) Status(ctx context.Context, id string) (*DocumentStatus, error) {
	if !envelope.IsID(id) {
		return nil, fmt.Errorf("status: %q is not an envelope id (a UUID)", id)
	}
	if c.opts.agency != "" {
		return c.svcStatus(ctx, id)
	}
	return retry(ctx, c, func(ctx context.Context) (*DocumentStatus, error) {
		ds, _, err := c.StatusFor(ctx, id, "")
		return ds, err
	})
}

// Tracking returns the tracking of envelope id for one recipient (of the
// sender the id is bound to). An agency client sees it only as that
// sender or as that recipient.
func (c *Client) Tracking(ctx context.Context, id, recipient string) (*Tracking, error) {
	if !envelope.IsID(id) {
		return nil, fmt.Errorf("%q is not an envelope id (a UUID)", id)
	}
	if c.opts.agency != "" {
		return c.svcTracking(ctx, id, recipient)
	}
	t, err := retry(ctx, c, func(ctx context.Context) (*Tracking, error) { return c.trackingFor(ctx, id, recipient, "") })
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %s for recipient %s", ErrNotFound, id, recipient)
	}
	return t, err
}

func (c *Client) trackEntries(ctx context.Context, filter string) ([]*Tracking, error) {
	keys, err := c.trackKeys(ctx, filter) // every key, whatever changes meanwhile (tracklist.go)
	if err != nil {
		return nil, err
	}
	var out []*Tracking
	for _, k := range keys {
		e, err := c.track.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read tracking %s: %w", k, err)
		}
		t, err := decodeTracking(e)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	// In the order they were last written, as a reader of the bucket
	// sees them.
	slices.SortFunc(out, func(a, b *Tracking) int { return cmp.Compare(a.Revision, b.Revision) })
	return out, nil
}

// Sent lists the tracking of every envelope agency sent (all recipients).
// An agency client lists its own only, page by page through the service.
func (c *Client) Sent(ctx context.Context, agency string) ([]*Tracking, error) {
	if c.opts.agency != "" {
		if err := c.mine(agency); err != nil {
			return nil, err
		}
		return c.svcList(ctx, record.TrackOpSent)
	}
	return c.trackEntries(ctx, record.TrackKeyFilter(agency, "", ""))
}

// Received lists the tracking of every envelope addressed to agency.
func (c *Client) Received(ctx context.Context, agency string) ([]*Tracking, error) {
	if c.opts.agency != "" {
		if err := c.mine(agency); err != nil {
			return nil, err
		}
		return c.svcList(ctx, record.TrackOpReceived)
	}
	return c.trackEntries(ctx, record.TrackKeyFilter("", "", agency))
}

// Watch streams the current state, then every change, of the documents
// agency sent or received, until ctx ends. The channel is closed then. An
// agency client watches its own through the bus's events (subscribed
// before the current state is read, so no change falls in between; a
// change may come twice, never older after newer).
func (c *Client) Watch(ctx context.Context, agency string) (<-chan *Tracking, error) {
	if c.opts.agency != "" {
		return c.svcWatch(ctx, agency)
	}
	out := make(chan *Tracking, 64)
	var wg sync.WaitGroup
	for _, filter := range []string{record.TrackKeyFilter(agency, "", ""), record.TrackKeyFilter("", "", agency)} {
		w, err := c.track.Watch(ctx, filter)
		if err != nil {
			return nil, fmt.Errorf("watch tracking of %s: %w", agency, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Stop()
			for {
				select {
				case e, ok := <-w.Updates():
					if !ok {
						return
					}
					if e == nil || e.Operation() != jetstream.KeyValuePut {
						continue
					}
					t, err := decodeTracking(e)
					if err != nil {
						c.opts.logger.Warn("watch: skip entry", "err", err)
						continue
					}
					select {
					case out <- t:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out, nil
}

// WaitState waits until the tracking of (id, recipient) reaches state or
// ctx ends. A state the pair went through before the call counts: a
// recipient quick to go on (delivered, then accepted at once) must not
// leave its sender waiting for a state it will never see again.
func (c *Client) WaitState(ctx context.Context, id, recipient string, state envelope.State) (*Tracking, error) {
	return c.waitTracking(ctx, id, recipient, string(state), func(t *Tracking) bool { return t.reached(state) })
}

// WaitStatus waits until the tracking of (id, recipient) has applied the
// signed status statusID (Event.Status) or ctx ends: what a recipient
// that just marked a state waits for, since the pair may have been in
// that state before (processing again after a refused recall).
func (c *Client) WaitStatus(ctx context.Context, id, recipient, statusID string) (*Tracking, error) {
	return c.waitTracking(ctx, id, recipient, "status "+statusID+" applied", func(t *Tracking) bool { return t.Applied(statusID) })
}

// waitTracking waits until the tracking of (id, recipient) meets done
// (want says what, for errors) or ctx ends.
func (c *Client) waitTracking(ctx context.Context, id, recipient, want string, done func(*Tracking) bool) (*Tracking, error) {
	if c.opts.agency != "" {
		return c.svcWaitTracking(ctx, id, recipient, want, done)
	}
	// The pair is keyed by the id's bound sender; until the first copy is
	// tracked there is none, so watch every sender's key for it and keep
	// only pairs made by a copy of the bound sender.
	w, err := c.track.Watch(ctx, record.TrackKeyFilter("", id, recipient))
	if err != nil {
		return nil, err
	}
	defer w.Stop()
	var last *Tracking
	for {
		select {
		case e := <-w.Updates():
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			t, err := decodeTracking(e)
			if err != nil {
				return nil, err
			}
			if t.Seq == 0 || t.Envelope != id || t.Recipient != recipient {
				continue
			}
			if sender, err := c.EnvelopeSender(ctx, id); err != nil || sender != t.Sender {
				continue
			}
			last = t
			if done(t) {
				return t, nil
			}
		case <-ctx.Done():
			if last != nil {
				return last, fmt.Errorf("%s for %s is %s, not %s: %w", id, recipient, last.State, want, ctx.Err())
			}
			return nil, fmt.Errorf("no tracking for %s at %s: %w", id, recipient, ctx.Err())
		}
	}
}
