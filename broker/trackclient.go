package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
)

// The agency side of the tracking service (see tracksvc.go): what a client
// connected with an agency's credentials uses instead of the bucket.

// ErrTrackingUnavailable: the bus's tracking service did not answer.
var ErrTrackingUnavailable = errors.New("tracking service unavailable")

// trackCall sends one request of op and returns the answer; it waits and
// asks again when the service says it is busy or rate-limited.
func (c *Client) trackCall(ctx context.Context, op string, req TrackRequest) (*TrackReply, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	subject := record.TrackServiceSubject(c.opts.agency, op)
	for {
		rctx, cancel := context.WithTimeout(ctx, c.opts.timeout)
		msg, err := c.nc.RequestWithContext(rctx, subject, body)
		cancel()
		if errors.Is(err, nats.ErrNoResponders) {
			return nil, fmt.Errorf("tracking %s: %w: nobody answers on %s (is 'docaxis serve' running on this bus?)", op, ErrTrackingUnavailable, subject)
		}
		if err != nil {
			err = c.explain(err)
			if errors.Is(err, ErrPermission) {
				// Credentials issued before the tracking service existed
				// carry permissions without it.
				return nil, fmt.Errorf("tracking %s: %w (credentials issued before this version: get new ones with 'docaxis agency creds')", op, err)
			}
			return nil, fmt.Errorf("tracking %s: %w", op, err)
		}
		var rep TrackReply
		if err := json.Unmarshal(msg.Data, &rep); err != nil {
			return nil, fmt.Errorf("tracking %s: undecodable answer: %w", op, err)
		}
		switch rep.Error {
		case "":
			return &rep, nil
		case record.CodeNotFound:
			return nil, fmt.Errorf("%w: %s", ErrNotFound, req.ID)
		case record.CodeIDTaken:
			return nil, answerError{text: rep.Message, sentinel: ErrIDTaken}
		case record.CodeBadRequest:
			return nil, fmt.Errorf("tracking %s: %w: %s", op, ErrTrackRequest, rep.Message)
		case record.CodeRateLimited, record.CodeUnavailable:
			if rep.Error == record.CodeUnavailable && rep.Message != record.TrackBusy {
				return nil, fmt.Errorf("tracking %s: %w: %s", op, ErrTrackingUnavailable, rep.Message)
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("tracking %s: %s: %w", op, rep.Message, ctx.Err())
			case <-time.After(rep.retryAfter()):
			}
		default:
			return nil, fmt.Errorf("tracking %s: %w: %s: %s", op, ErrTrackingUnavailable, rep.Error, rep.Message)
		}
	}
}

// flush makes sure the server has what was sent (a subscription above
// all) before the caller goes on; nats.go wants a deadline for it.
func (c *Client) flush(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.timeout)
	defer cancel()
	return c.nc.FlushWithContext(ctx)
}

// waitTrackService waits up to d for the tracking service of a bus that
// may just be starting.
func (c *Client) waitTrackService(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		_, err := c.trackCall(ctx, record.TrackOpPing, TrackRequest{})
		if err == nil || !errors.Is(err, ErrTrackingUnavailable) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// mine refuses an agency client a request about another agency: it may
// only read its own tracking.
func (c *Client) mine(agency string) error {
	if agency != c.opts.agency {
		return fmt.Errorf("%w: a client of agency %s reads its own tracking, not that of %s", ErrPermission, c.opts.agency, agency)
	}
	return nil
}

func (c *Client) svcStatus(ctx context.Context, id string) (*DocumentStatus, error) {
	var ds *DocumentStatus
	seen := map[string]int{}
	for after := uint64(0); ; {
		rep, err := c.trackCall(ctx, record.TrackOpStatus, TrackRequest{ID: id, After: after})
		if err != nil {
			return nil, err
		}
		if rep.Status == nil {
			return nil, fmt.Errorf("tracking status: answer without a status")
		}
		if ds == nil {
			ds = &DocumentStatus{ID: id, Sender: rep.Status.Sender, Note: rep.Status.Note}
		}
		mergeStatus(ds, rep.Status, seen)
		if rep.Next == 0 || rep.Next <= after {
			break
		}
		after = rep.Next
	}
	if len(ds.Recipients) == 0 {
		return nil, notFound(id)
	}
	sortRecipients(ds)
	return ds, nil
}

// trackListLimit is the page size an agency client asks for when listing
// (0: the service's default).
var trackListLimit = 0

// svcList reads every page of op (sent or received) from the service.
func (c *Client) svcList(ctx context.Context, op string) ([]*Tracking, error) {
	var out []*Tracking
	seen := map[string]int{}
	for after := uint64(0); ; {
		rep, err := c.trackCall(ctx, op, TrackRequest{After: after, Limit: trackListLimit})
		if err != nil {
			return nil, err
		}
		for _, t := range rep.Entries {
			k := record.TrackKey(t.Sender, t.Envelope, t.Recipient)
			if i, ok := seen[k]; ok {
				if t.Revision > out[i].Revision {
					out[i] = t
				}
				continue
			}
			seen[k] = len(out)
			out = append(out, t)
		}
		if rep.Next == 0 || rep.Next <= after {
			return out, nil
		}
		after = rep.Next
	}
}

// svcWatch: subscribe to the agency's events first, then read the
// snapshot, then pass on the events, each pair's newer revisions only: a
// change made while the snapshot is read is in the events, and nothing
// older than what was shown is shown after it.
func (c *Client) svcWatch(ctx context.Context, agency string) (<-chan *Tracking, error) {
	if err := c.mine(agency); err != nil {
		return nil, err
	}
	sub, err := c.nc.SubscribeSync(record.TrackEventSubject(agency))
	if err != nil {
		return nil, fmt.Errorf("watch tracking of %s: %w", agency, err)
	}
	if err := c.flush(ctx); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("watch tracking of %s: %w", agency, err)
	}
	// The first page now, so that a refusal is returned, not logged.
	first, err := c.trackCall(ctx, record.TrackOpSent, TrackRequest{Limit: trackListLimit})
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("watch tracking of %s: %w", agency, err)
	}
	out := make(chan *Tracking, 64)
	go func() {
		defer close(out)
		defer sub.Unsubscribe()
		seen := map[string]uint64{}
		emit := func(t *Tracking) bool {
			k := record.TrackKey(t.Sender, t.Envelope, t.Recipient)
			if t.Revision != 0 && t.Revision <= seen[k] {
				return true
			}
			seen[k] = t.Revision
			select {
			case out <- t:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for _, op := range []string{record.TrackOpSent, record.TrackOpReceived} {
			rep := first
			for after := uint64(0); ; {
				if rep == nil {
					if rep, err = c.trackCall(ctx, op, TrackRequest{After: after, Limit: trackListLimit}); err != nil {
						if ctx.Err() == nil {
							c.opts.logger.Warn("watch: snapshot incomplete", "agency", agency, "op", op, "err", err)
						}
						break
					}
				}
				for _, t := range rep.Entries {
					if !emit(t) {
						return
					}
				}
				if rep.Next == 0 || rep.Next <= after {
					break
				}
				after, rep = rep.Next, nil
			}
			first = nil
		}
		for {
			msg, err := sub.NextMsgWithContext(ctx)
			if err != nil {
				return
			}
			t, ok := trackEvent(msg, agency)
			if !ok {
				continue
			}
			if !emit(t) {
				return
			}
		}
	}()
	return out, nil
}

// trackEvent decodes an event of one of agency's pairs, as the tracking
// service publishes it: no reply subject, the envelope header, the pair
// the agency's. Anything else on the subject is not the bus's word and is
// dropped: above all a consumer's delivery, which any agency can pull
// onto this subject (its own mailbox, a pull request whose reply subject
// it chooses, see record.Published) with the bytes it stored there.
func trackEvent(m *nats.Msg, agency string) (*Tracking, bool) {
	if !record.Published(m) {
		return nil, false
	}
	var t Tracking
	if err := json.Unmarshal(m.Data, &t); err != nil || !envelope.IsID(t.Envelope) ||
		m.Header.Get(record.HeaderEnvelope) != t.Envelope || (t.Sender != agency && t.Recipient != agency) {
		return nil, false
	}
	return &t, true
}

// waitStatePoll is how often WaitState of an agency client asks again in
// case an event was lost (events are at most once).
var waitStatePoll = 5 * time.Second

func (c *Client) svcWaitTracking(ctx context.Context, id, recipient, want string, done func(*Tracking) bool) (*Tracking, error) {
	events := make(chan *nats.Msg, 256)
	sub, err := c.nc.ChanSubscribe(record.TrackEventSubject(c.opts.agency), events)
	if err != nil {
		return nil, fmt.Errorf("wait for %s of %s at %s: %w", want, id, recipient, err)
	}
	defer sub.Unsubscribe()
	if err := c.flush(ctx); err != nil {
		return nil, fmt.Errorf("wait for %s of %s at %s: %w", want, id, recipient, err)
	}
	var last *Tracking
	check := func() error {
		t, err := c.svcTracking(ctx, id, recipient)
		if errors.Is(err, ErrNotFound) {
			return nil // not (yet) tracked, or not the caller's: wait
		}
		if err != nil {
			return err
		}
		if last == nil || t.Revision >= last.Revision {
			last = t
		}
		return nil
	}
	if err := check(); err != nil && ctx.Err() == nil {
		return nil, err
	}
	tick := time.NewTicker(waitStatePoll)
	defer tick.Stop()
	for {
		if last != nil && done(last) {
			return last, nil
		}
		select {
		case msg := <-events:
			t, ok := trackEvent(msg, c.opts.agency)
			if ok && t.Envelope == id && t.Recipient == recipient && (last == nil || t.Revision > last.Revision) {
				last = t
			}
		case <-tick.C:
			_ = check()
		case <-ctx.Done():
			if last != nil {
				return last, fmt.Errorf("%s for %s is %s, not %s: %w", id, recipient, last.State, want, ctx.Err())
			}
			return nil, fmt.Errorf("no tracking for %s at %s: %w", id, recipient, ctx.Err())
		}
	}
}

func (c *Client) svcTracking(ctx context.Context, id, recipient string) (*Tracking, error) {
	rep, err := c.trackCall(ctx, record.TrackOpTracking, TrackRequest{ID: id, Recipient: recipient})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: %s for recipient %s", ErrNotFound, id, recipient)
		}
		return nil, err
	}
	if rep.Tracking == nil {
		return nil, fmt.Errorf("tracking: answer without a tracking entry")
	}
	return rep.Tracking, nil
}

// svcStatuses reads the signed statuses of envelope id the agency may see
// through the service, and verifies each itself.
func (c *Client) svcStatuses(ctx context.Context, id string) ([]RecordedStatus, error) {
	var recs []StatusRecord
	for after := uint64(0); ; {
		rep, err := c.trackCall(ctx, record.TrackOpStatuses, TrackRequest{ID: id, After: after})
		if err != nil {
			return nil, err
		}
		recs = append(recs, rep.Statuses...)
		if rep.Next == 0 || rep.Next <= after {
			break
		}
		after = rep.Next
	}
	// The bus's order: per recipient, in the order the tracker applied them.
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Recipient != recs[j].Recipient {
			return recs[i].Recipient < recs[j].Recipient
		}
		return recs[i].Seq < recs[j].Seq
	})
	out := make([]RecordedStatus, 0, len(recs))
	for _, r := range recs {
		s, err := envelope.Open(r.Raw)
		if err == nil {
			h := nats.Header{}
			if r.Recorded != "" {
				h.Set(record.HeaderRecorded, r.Recorded)
			}
			err = c.judgeStored(s, h, s.Envelope.From, r.Time)
		}
		if err == nil && (s.Envelope.Kind != envelope.KindStatus || s.Envelope.Status.Of != id || s.Envelope.From != r.Recipient) {
			err = fmt.Errorf("it is not a status of %s by %s", id, r.Recipient)
		}
		if err != nil {
			return nil, fmt.Errorf("status #%d of %s on record does not verify: %w", r.Seq, id, err)
		}
		out = append(out, RecordedStatus{Recipient: r.Recipient, Seq: r.Seq, Signed: s})
	}
	return out, nil
}

// answerError is a service's answer whose text already says what its
// sentinel says.
type answerError struct {
	text     string
	sentinel error
}

func (e answerError) Error() string { return e.text }
func (e answerError) Unwrap() error { return e.sentinel }
