package bus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/ratelimit"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/broker/responder"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
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

// Bounds of the tracking service.
const (
	maxTrackRequest = 1 << 10 // bytes of a request body
	maxTrackLimit   = 1000    // entries a list page may ask for
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
func decodeTrackRequest(subject string, data []byte) (agency, op string, req broker.TrackRequest, err error) {
	rest, ok := strings.CutPrefix(subject, record.TrackServicePrefix)
	tok, op, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || tok == "" || strings.Contains(op, ".") {
		return "", "", req, fmt.Errorf("%w: subject %q is not %s<agency>.<op>", broker.ErrTrackRequest, subject, record.TrackServicePrefix)
	}
	agency = envelope.CodeFromToken(tok)
	if err := envelope.CheckNonStandardCode(agency); err != nil || envelope.Token(agency) != tok {
		return "", "", req, fmt.Errorf("%w: subject %q names no agency", broker.ErrTrackRequest, subject)
	}
	if len(data) > maxTrackRequest {
		return agency, op, req, fmt.Errorf("%w: %d bytes, at most %d", broker.ErrTrackRequest, len(data), maxTrackRequest)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return agency, op, req, fmt.Errorf("%w: body: %v", broker.ErrTrackRequest, err)
		}
		if dec.More() {
			return agency, op, req, fmt.Errorf("%w: body: more than one JSON value", broker.ErrTrackRequest)
		}
	}
	if req.Limit < 0 || req.Limit > maxTrackLimit {
		return agency, op, req, fmt.Errorf("%w: limit %d, want 0 (the default) to %d", broker.ErrTrackRequest, req.Limit, maxTrackLimit)
	}
	switch op {
	case record.TrackOpPing:
	case record.TrackOpStatus, record.TrackOpStatuses:
		if !envelope.IsID(req.ID) {
			return agency, op, req, fmt.Errorf("%w: id %q is not an envelope id (a UUID)", broker.ErrTrackRequest, req.ID)
		}
	case record.TrackOpTracking:
		if !envelope.IsID(req.ID) {
			return agency, op, req, fmt.Errorf("%w: id %q is not an envelope id (a UUID)", broker.ErrTrackRequest, req.ID)
		}
		if err := envelope.CheckNonStandardCode(req.Recipient); err != nil {
			return agency, op, req, fmt.Errorf("%w: recipient: %v", broker.ErrTrackRequest, err)
		}
	case record.TrackOpSent, record.TrackOpReceived:
	case record.TrackOpCopy:
		if !envelope.IsID(req.ID) || req.Seq == 0 {
			return agency, op, req, fmt.Errorf("%w: want an envelope id and a record sequence, got %q and %d", broker.ErrTrackRequest, req.ID, req.Seq)
		}
		if err := envelope.CheckNonStandardCode(req.Recipient); err != nil {
			return agency, op, req, fmt.Errorf("%w: recipient: %v", broker.ErrTrackRequest, err)
		}
	default:
		return agency, op, req, fmt.Errorf("%w: unknown operation %q (ping, status, tracking, sent, received, statuses, copy)", broker.ErrTrackRequest, op)
	}
	return agency, op, req, nil
}

// trackService is the bus side: it runs in `docaxis serve` with the bus's
// own client.
type trackService struct {
	c   *broker.Client
	log *slog.Logger
	// interest skips events nobody subscribes to (nil: publish all).
	interest func(subject string) bool
	sub      *responder.Responder
	sem      chan struct{}
	rate     ratelimit.Limiter
	mu       sync.Mutex // guards busy, and wg.Add against stop
	busy     map[string]int
	wg       sync.WaitGroup
	stopped  atomic.Bool
}

// startTrackService answers agencies' tracking requests with c (the bus's
// client) and publishes the changes tr makes.
func startTrackService(ctx context.Context, c *broker.Client, tr *Tracker, interest func(string) bool, log *slog.Logger) (*trackService, error) {
	s := &trackService{c: c, log: log, interest: interest, sem: make(chan struct{}, trackWorkers), busy: map[string]int{}}
	fctx, cancel := context.WithTimeout(ctx, c.Timeout())
	defer cancel()
	sub, err := responder.Listen(fctx, c.Conn(), responder.Config{
		Subject: record.TrackServicePrefix + "*.*", Queue: trackSvcQueue, Handler: s.onRequest,
	})
	if err != nil {
		return nil, fmt.Errorf("start tracking service: %w", err)
	}
	s.sub = sub
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
	s.sub.Stop()
	s.wg.Wait()
}

// publish sends a changed pair to its sender's and its recipient's events.
func (s *trackService) publish(t *broker.Tracking, _ envelope.State) {
	if s.stopped.Load() {
		return
	}
	var data []byte
	for _, who := range []string{t.Sender, t.Recipient} {
		subject := record.TrackEventSubject(who)
		if s.interest != nil && !s.interest(subject) {
			continue
		}
		if data == nil {
			var err error
			if data, err = json.Marshal(t); err != nil {
				return
			}
		}
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
		msg.Header.Set(record.HeaderEnvelope, t.Envelope)
		if err := s.c.Conn().PublishMsg(msg); err != nil {
			s.log.Warn("tracking event not published", "envelope", t.Envelope, "agency", who, "err", err)
		}
	}
}

func (s *trackService) onRequest(m *nats.Msg) {
	rest, _ := strings.CutPrefix(m.Subject, record.TrackServicePrefix)
	tok, _, _ := strings.Cut(rest, ".")
	// Answers go only to the requester's own inbox (auth.InboxPrefix), not
	// even the shared "_INBOX." record.ReplyAllowed lets the other services
	// answer: anything else is dropped, since the only address is the
	// wrong one.
	if tok == "" || !strings.HasPrefix(m.Reply, "_INBOX_"+tok+".") || !record.ReplyAllowed(m.Reply, tok) {
		s.log.Debug("tracking request dropped: reply outside the agency's inbox", "subject", m.Subject, "reply", m.Reply)
		return
	}
	agency, op, req, err := decodeTrackRequest(m.Subject, m.Data)
	if err != nil {
		s.answer(m.Reply, &broker.TrackReply{Error: record.CodeBadRequest, Message: err.Error()})
		return
	}
	if !s.rate.Allow(agency, ratelimit.Rate{PerSecond: trackRate, Burst: trackRate}) {
		s.answer(m.Reply, &broker.TrackReply{Error: record.CodeRateLimited, RetryAfterMS: 1000 / trackRate * 2,
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
		s.answer(m.Reply, &broker.TrackReply{Error: record.CodeUnavailable, Message: record.TrackBusy})
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		s.mu.Unlock()
		s.answer(m.Reply, &broker.TrackReply{Error: record.CodeUnavailable, Message: record.TrackBusy})
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
		ctx, cancel := context.WithTimeout(context.Background(), s.c.Timeout())
		defer cancel()
		rep, err := s.c.AnswerTracking(ctx, agency, op, req, s.budget())
		if err != nil {
			rep = &broker.TrackReply{Error: record.CodeUnavailable, Message: err.Error()}
			switch {
			case errors.Is(err, broker.ErrIDTaken):
				rep = &broker.TrackReply{Error: record.CodeIDTaken, Message: err.Error()}
			case errors.Is(err, broker.ErrNotFound):
				rep = &broker.TrackReply{Error: record.CodeNotFound, Message: fmt.Errorf("%w: %s", broker.ErrNotFound, req.ID).Error()}
			case errors.Is(err, broker.ErrRecordUnread):
				// Not "not found": the record could not be read yet (a
				// replica catching up, a leader election); the client asks
				// again within its deadline.
				rep = &broker.TrackReply{Error: record.CodeUnavailable, Message: record.TrackBusy, RetryAfterMS: 200}
			default:
				s.log.Warn("tracking request failed", "agency", agency, "op", op, "err", err)
			}
		}
		s.answer(m.Reply, rep)
	}()
}

func (s *trackService) answer(reply string, rep *broker.TrackReply) {
	data, err := json.Marshal(rep)
	if err == nil {
		err = s.c.Conn().Publish(reply, data)
	}
	if err != nil {
		s.log.Debug("tracking answer lost", "reply", reply, "err", err)
	}
}

// budget is the bytes of entries one reply may carry.
func (s *trackService) budget() int {
	if mp := s.c.Conn().MaxPayload(); mp > 0 {
		return min(trackReplyBudget, int(mp)*3/4)
	}
	return trackReplyBudget
}
