package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The tracking service: agencies have no access to the tracking bucket
// (its keys and the JetStream API around it would tell them who writes to
// whom); the bus answers their tracking requests from their own pairs and
// publishes each change to the two agencies of the pair.
//
// Requests (request/reply, JSON) go to axis.svc.track.<token>.<op>; NATS
// permissions let an agency publish only under its own token, so the
// service trusts it, and it answers only to that agency's inbox. Ops:
//
//	ping      {}                         → {}
//	status    {"id", "after"}            → {"status", "role", "next"}
//	tracking  {"id", "recipient"}        → {"tracking"}
//	sent      {"after", "limit"}         → {"entries", "next"}
//	received  {"after", "limit"}         → {"entries", "next"}
//	statuses  {"id", "after", "limit"}   → {"statuses", "next"}
//
// Lists are paged: a reply carries at most "limit" entries and stays well
// under the 1 MiB a NATS message may carry; "next", when not 0, is the
// "after" of the next page. Errors: {"error": code, "message"}, with the
// same "not-found" for an envelope that is not the caller's and one that
// does not exist.
//
// Events: every change of a pair is published (core NATS, at most once) on
// axis.evt.track.<token> of its sender and of its recipient, as the
// Tracking entry of that pair alone.
const (
	trackSvcQueue = "docaxis-track"
)

// Tracking service operations.
const (
	trackOpPing     = "ping"
	trackOpStatus   = "status"
	trackOpTracking = "tracking"
	trackOpSent     = "sent"
	trackOpReceived = "received"
	trackOpStatuses = "statuses"
)

// Tracking service error codes.
const (
	trackErrNotFound    = "not-found"
	trackErrBadRequest  = "bad-request"
	trackErrRateLimited = "rate-limited"
	trackErrUnavailable = "unavailable"
	// trackBusy is the message of an "unavailable" that asks to retry.
	trackBusy = "tracking service busy; retry"
)

// ErrTrackRequest: the tracking service refused a request as malformed.
var ErrTrackRequest = errors.New("bad tracking request")

// trackRequest is the body of a tracking request.
type trackRequest struct {
	ID        string `json:"id,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	After     uint64 `json:"after,omitempty"`
	Limit     int    `json:"limit,omitempty"`
}

// trackReply is the body of a tracking answer.
type trackReply struct {
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
	// RetryAfterMS, with rate-limited, says when to ask again.
	RetryAfterMS int64           `json:"retry_after_ms,omitempty"`
	Role         string          `json:"role,omitempty"`
	Status       *DocumentStatus `json:"status,omitempty"`
	Tracking     *Tracking       `json:"tracking,omitempty"`
	Entries      []*Tracking     `json:"entries,omitempty"`
	Statuses     []statusRecord  `json:"statuses,omitempty"`
	Next         uint64          `json:"next,omitempty"`
}

// statusRecord is a signed status as the record holds it, for the agency
// to verify itself.
type statusRecord struct {
	Recipient string    `json:"recipient"`
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Recorded  string    `json:"recorded,omitempty"` // record.HeaderRecorded of the record message
	Raw       []byte    `json:"raw"`
}

// Bounds of the tracking service.
const (
	maxTrackRequest  = 1 << 10 // bytes of a request body
	maxTrackLimit    = 1000    // entries a list page may ask for
	trackListDefault = 500
	// trackReplyBudget bounds the entries of one reply (the rest goes to
	// the next page), under NATS's default 1 MiB payload; a server set to
	// carry less gets three quarters of its limit (see budget).
	trackReplyBudget = 768 << 10
	// trackRate is the requests per second (and burst) of one agency.
	trackRate = 200
	// trackWorkers bounds the requests served at once, trackPerAgency
	// those of one agency; beyond, the answer is "unavailable, retry".
	trackWorkers   = 32
	trackPerAgency = 4
)

// decodeTrackRequest parses a request: the agency from the subject, the op,
// and the body (small, one JSON object, no unknown fields, values checked
// for op).
func decodeTrackRequest(subject string, data []byte) (agency, op string, req trackRequest, err error) {
	rest, ok := strings.CutPrefix(subject, record.TrackServicePrefix)
	tok, op, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || tok == "" || strings.Contains(op, ".") {
		return "", "", req, fmt.Errorf("%w: subject %q is not %s<agency>.<op>", ErrTrackRequest, subject, record.TrackServicePrefix)
	}
	agency = envelope.CodeFromToken(tok)
	if err := envelope.CheckNonStandardCode(agency); err != nil || envelope.Token(agency) != tok {
		return "", "", req, fmt.Errorf("%w: subject %q names no agency", ErrTrackRequest, subject)
	}
	if len(data) > maxTrackRequest {
		return agency, op, req, fmt.Errorf("%w: %d bytes, at most %d", ErrTrackRequest, len(data), maxTrackRequest)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return agency, op, req, fmt.Errorf("%w: body: %v", ErrTrackRequest, err)
		}
		if dec.More() {
			return agency, op, req, fmt.Errorf("%w: body: more than one JSON value", ErrTrackRequest)
		}
	}
	if req.Limit < 0 || req.Limit > maxTrackLimit {
		return agency, op, req, fmt.Errorf("%w: limit %d, want 1 to %d", ErrTrackRequest, req.Limit, maxTrackLimit)
	}
	switch op {
	case trackOpPing:
	case trackOpStatus, trackOpStatuses:
		if !envelope.IsID(req.ID) {
			return agency, op, req, fmt.Errorf("%w: id %q is not an envelope id (a UUID)", ErrTrackRequest, req.ID)
		}
	case trackOpTracking:
		if !envelope.IsID(req.ID) {
			return agency, op, req, fmt.Errorf("%w: id %q is not an envelope id (a UUID)", ErrTrackRequest, req.ID)
		}
		if err := envelope.CheckNonStandardCode(req.Recipient); err != nil {
			return agency, op, req, fmt.Errorf("%w: recipient: %v", ErrTrackRequest, err)
		}
	case trackOpSent, trackOpReceived:
	default:
		return agency, op, req, fmt.Errorf("%w: unknown operation %q (ping, status, tracking, sent, received, statuses)", ErrTrackRequest, op)
	}
	return agency, op, req, nil
}

// trackService is the bus side: it runs in `docaxis serve` with the bus's
// own client.
type trackService struct {
	c       *Client
	log     *slog.Logger
	sub     *nats.Subscription
	sem     chan struct{}
	rate    rateLimiter
	mu      sync.Mutex // guards busy, and wg.Add against stop
	busy    map[string]int
	wg      sync.WaitGroup
	stopped atomic.Bool
}

// startTrackService answers agencies' tracking requests with c (the bus's
// client) and publishes the changes tr makes.
func startTrackService(ctx context.Context, c *Client, tr TrackingSource, log *slog.Logger) (*trackService, error) {
	s := &trackService{c: c, log: log, sem: make(chan struct{}, trackWorkers), busy: map[string]int{}}
	sub, err := c.nc.QueueSubscribe(record.TrackServicePrefix+"*.*", trackSvcQueue, s.onRequest)
	if err != nil {
		return nil, fmt.Errorf("start tracking service: %w", err)
	}
	s.sub = sub
	if err := c.flush(ctx); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("start tracking service: %w", err)
	}
	tr.Observe(s.publish)
	return s, nil
}

// stop takes no new requests and waits for those in hand.
func (s *trackService) stop() {
	s.mu.Lock()
	was := s.stopped.Swap(true)
	s.mu.Unlock()
	if was {
		return
	}
	_ = s.sub.Unsubscribe()
	s.wg.Wait()
}

// publish sends a changed pair to its sender's and its recipient's events.
func (s *trackService) publish(t *Tracking, _ envelope.State) {
	if s.stopped.Load() {
		return
	}
	data, err := json.Marshal(t)
	if err != nil {
		return
	}
	for _, who := range []string{t.Sender, t.Recipient} {
		msg := &nats.Msg{Subject: record.TrackEventSubject(who), Data: data, Header: nats.Header{}}
		msg.Header.Set(record.HeaderEnvelope, t.Envelope)
		if err := s.c.nc.PublishMsg(msg); err != nil {
			s.log.Warn("tracking event not published", "envelope", t.Envelope, "agency", who, "err", err)
		}
	}
}

func (s *trackService) onRequest(m *nats.Msg) {
	rest, _ := strings.CutPrefix(m.Subject, record.TrackServicePrefix)
	tok, _, _ := strings.Cut(rest, ".")
	// Answers go only to the requester's own inbox (auth.InboxPrefix):
	// anything else is dropped, since the only address is the wrong one.
	if tok == "" || !strings.HasPrefix(m.Reply, "_INBOX_"+tok+".") || strings.ContainsAny(m.Reply, "*> ") {
		s.log.Debug("tracking request dropped: reply outside the agency's inbox", "subject", m.Subject, "reply", m.Reply)
		return
	}
	agency, op, req, err := decodeTrackRequest(m.Subject, m.Data)
	if err != nil {
		s.answer(m.Reply, &trackReply{Error: trackErrBadRequest, Message: err.Error()})
		return
	}
	if !s.rate.allow(agency, trackRate) {
		s.answer(m.Reply, &trackReply{Error: trackErrRateLimited, RetryAfterMS: 1000 / trackRate * 2,
			Message: fmt.Sprintf("agency %s made more than %d tracking requests per second", agency, trackRate)})
		return
	}
	s.mu.Lock()
	if s.stopped.Load() {
		s.mu.Unlock()
		return
	}
	if s.busy[agency] >= trackPerAgency {
		s.mu.Unlock()
		s.answer(m.Reply, &trackReply{Error: trackErrUnavailable, Message: trackBusy})
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.mu.Unlock()
		s.answer(m.Reply, &trackReply{Error: trackErrUnavailable, Message: trackBusy})
		return
	}
	s.busy[agency]++
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			if s.busy[agency]--; s.busy[agency] <= 0 {
				delete(s.busy, agency)
			}
			s.mu.Unlock()
			<-s.sem
		}()
		ctx, cancel := context.WithTimeout(context.Background(), s.c.opts.timeout)
		defer cancel()
		rep, err := s.serve(ctx, agency, op, req)
		if err != nil {
			rep = &trackReply{Error: trackErrUnavailable, Message: err.Error()}
			switch {
			case errors.Is(err, ErrNotFound):
				rep = &trackReply{Error: trackErrNotFound, Message: notFound(req.ID).Error()}
			case errors.Is(err, ErrRecordUnread):
				// Not "not found": the record could not be read yet (a
				// replica catching up, a leader election); the client asks
				// again within its deadline.
				rep = &trackReply{Error: trackErrUnavailable, Message: trackBusy, RetryAfterMS: 200}
			default:
				s.log.Warn("tracking request failed", "agency", agency, "op", op, "err", err)
			}
		}
		s.answer(m.Reply, rep)
	}()
}

func (s *trackService) answer(reply string, rep *trackReply) {
	data, err := json.Marshal(rep)
	if err == nil {
		err = s.c.nc.Publish(reply, data)
	}
	if err != nil {
		s.log.Debug("tracking answer lost", "reply", reply, "err", err)
	}
}

// serve answers one request of agency, from its own pairs only.
func (s *trackService) serve(ctx context.Context, agency, op string, req trackRequest) (*trackReply, error) {
	limit := req.Limit
	if limit == 0 {
		limit = trackListDefault
	}
	switch op {
	case trackOpPing:
		return &trackReply{}, nil
	case trackOpStatus:
		ds, role, next, err := s.c.statusPage(ctx, req.ID, agency, req.After)
		if errors.Is(err, ErrNotFound) && req.After == 0 {
			ds, role, err = s.c.statusOrRecord(ctx, req.ID, agency, err) // not tracked yet? (status_record.go)
		}
		if err != nil {
			return nil, err
		}
		if n := fitReply(s.budget(), len(ds.Recipients), func(i int) any { return &ds.Recipients[i] }); n < len(ds.Recipients) {
			next = ds.Recipients[n-1].Revision
			ds.Recipients = ds.Recipients[:n]
		}
		return &trackReply{Status: ds, Role: role, Next: next}, nil
	case trackOpTracking:
		t, err := s.c.trackingFor(ctx, req.ID, req.Recipient, agency)
		if err != nil {
			return nil, err
		}
		return &trackReply{Tracking: t}, nil
	case trackOpSent, trackOpReceived:
		tok := envelope.Token(agency)
		pattern := tok + ".*.*"
		if op == trackOpReceived {
			pattern = "*.*." + tok
		}
		page, err := s.c.readTrackPage(ctx, pattern, req.After, limit, s.budget())
		if err != nil {
			return nil, err
		}
		rep := &trackReply{Next: page.Next, Entries: []*Tracking{}}
		for _, t := range page.Entries {
			if t.Seq == 0 || (op == trackOpSent && t.Sender != agency) || (op == trackOpReceived && t.Recipient != agency) {
				continue
			}
			rep.Entries = append(rep.Entries, t)
		}
		if n := fitReply(s.budget(), len(rep.Entries), func(i int) any { return rep.Entries[i] }); n < len(rep.Entries) {
			rep.Next = rep.Entries[n-1].Revision
			rep.Entries = rep.Entries[:n]
		}
		return rep, nil
	case trackOpStatuses:
		return s.statuses(ctx, agency, req, limit)
	}
	return nil, fmt.Errorf("%w: unknown operation %q", ErrTrackRequest, op)
}

// budget is the bytes of entries one reply may carry.
func (s *trackService) budget() int {
	if mp := s.c.nc.MaxPayload(); mp > 0 {
		return min(trackReplyBudget, int(mp)*3/4)
	}
	return trackReplyBudget
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

// statuses answers a page of the signed statuses on record for envelope
// id that agency may see (those of its own pairs), in record order after
// the record sequence req.After.
func (s *trackService) statuses(ctx context.Context, agency string, req trackRequest, limit int) (*trackReply, error) {
	ds, _, err := s.c.StatusFor(ctx, req.ID, agency)
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
	st, err := s.c.js.Stream(ctx, record.Stream)
	if err != nil {
		return nil, fmt.Errorf("statuses of %s: %w", req.ID, err)
	}
	rep := &trackReply{Statuses: []statusRecord{}}
	size := 0
	budget := s.budget()
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
		rep.Statuses = append(rep.Statuses, statusRecord{Recipient: r.recipient, Seq: r.seq, Time: msg.Time,
			Recorded: msg.Header.Get(record.HeaderRecorded), Raw: msg.Data})
		size += add
	}
	return rep, nil
}

// retryAfter is how long a rate-limited client waits before asking again.
func (r *trackReply) retryAfter() time.Duration {
	d := time.Duration(r.RetryAfterMS) * time.Millisecond
	return min(max(d, 10*time.Millisecond), time.Second)
}
