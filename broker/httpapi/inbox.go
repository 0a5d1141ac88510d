package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
)

// getInbox lists the envelopes addressed to the agency that it has not
// acknowledged yet, oldest first. Listing consumes nothing: an envelope
// stays listed until POST /v1/inbox/{id}/ack (or the agency's Go/CLI
// mailbox) acknowledges it.
func (s *Server) getInbox(w http.ResponseWriter, r *http.Request, agency string) {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), "limit", 100, 500)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var after uint64
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			writeError(w, apiError(http.StatusBadRequest, CodeBadRequest, "after=%q: want the 'next' value of the previous page", v))
			return
		}
	}
	floor := s.floor(agency)
	res, err := s.c.Pending(r.Context(), agency, broker.PendingOptions{After: max(after, floor), Limit: limit})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if after == 0 {
		s.setFloor(agency, res.Floor)
	}
	out := struct {
		Envelopes []envelopeView `json:"envelopes"`
		More      bool           `json:"more"`
		Next      string         `json:"next,omitempty"`
	}{Envelopes: make([]envelopeView, 0, len(res.Envelopes)), More: res.More}
	for _, se := range res.Envelopes {
		out.Envelopes = append(out.Envelopes, viewOf(se, "recipient"))
	}
	if res.More && len(res.Envelopes) > 0 {
		out.Next = strconv.FormatUint(res.Envelopes[len(res.Envelopes)-1].Seq, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

// floor remembers, per agency, the mailbox sequence up to which every copy
// is handled: an agency that only uses HTTP never moves its mailbox
// consumer's ack floor, and listings should not rescan its whole history.
func (s *Server) floor(agency string) uint64 {
	s.floorsMu.Lock()
	defer s.floorsMu.Unlock()
	return s.floors[agency]
}

func (s *Server) setFloor(agency string, seq uint64) {
	s.floorsMu.Lock()
	defer s.floorsMu.Unlock()
	if seq > s.floors[agency] {
		s.floors[agency] = seq
	}
}

type ackResult struct {
	ID        string         `json:"id"`
	State     envelope.State `json:"state"`
	Digest    string         `json:"digest"`
	Seq       uint64         `json:"seq"`
	At        time.Time      `json:"at"`
	Duplicate bool           `json:"duplicate,omitempty"`
}

// postAck acknowledges an envelope for the agency: verified with its
// attachments, answered with the signed delivered receipt, recorded as
// received. Acknowledging again is harmless.
func (s *Server) postAck(w http.ResponseWriter, r *http.Request, agency string) {
	ctx := r.Context()
	id := r.PathValue("id")
	if !envelope.IsID(id) {
		writeError(w, apiError(http.StatusBadRequest, CodeBadRequest, "%q is not an envelope id (a UUID in canonical form)", id))
		return
	}
	// Read-your-writes: once this answers, status shows delivered and a
	// business status may follow at once.
	ack, err := s.c.Acknowledge(ctx, agency, id, append(slices.Clip(s.cfg.Receive), broker.WaitDelivered(s.cfg.TrackWait))...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ackResult{ID: id, State: envelope.StateDelivered, Digest: ack.Digest, Seq: ack.Seq, At: ack.At, Duplicate: ack.Duplicate})
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request, agency string) {
	a, err := s.access(r.Context(), agency, r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a.status)
}

// statusRequest is the body of POST /v1/envelopes/{id}/status.
type statusRequest struct {
	State string          `json:"state"`
	Note  string          `json:"note,omitempty"`
	Staff *envelope.Staff `json:"staff,omitempty"`
}

type statusResult struct {
	ID    string         `json:"id"` // the signed status envelope
	Of    string         `json:"of"`
	State envelope.State `json:"state"`
	Code  string         `json:"code,omitempty"`
}

// postStatus sets a business status as the recipient agency: a signed
// status envelope to the sender, checked against the current state.
func (s *Server) postStatus(w http.ResponseWriter, r *http.Request, agency string) {
	ctx := r.Context()
	id := r.PathValue("id")
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, apiError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "want Content-Type application/json, got %q", ct))
			return
		}
	}
	var req statusRequest
	if err := decodeJSON(http.MaxBytesReader(w, r.Body, s.limits.MaxJSONBytes+1), s.limits.MaxJSONBytes, "body", &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.State == "" {
		writeError(w, apiError(http.StatusBadRequest, CodeBadRequest, `body: missing "state" (a name such as accepted, or an edXML code such as 03)`))
		return
	}
	state, err := envelope.ParseState(req.State)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !state.Business() {
		writeError(w, apiError(http.StatusBadRequest, CodeBadRequest, "state %s is set by the bus, not by a clerk (accepted, rejected, assigned, processing, done, recall-accepted, recall-refused)", state))
		return
	}
	a, err := s.access(ctx, agency, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if a.role != "recipient" {
		writeError(w, apiError(http.StatusForbidden, CodeForbidden, "%s sent envelope %s; only a recipient sets its status", agency, id))
		return
	}
	if err := envelope.CheckTransition(a.own.State, state); err != nil {
		msg := err.Error()
		if a.own.State == envelope.StateSent {
			msg += fmt.Sprintf("; acknowledge it first: POST /v1/inbox/%s/ack", id)
		}
		writeError(w, &Error{Status: http.StatusConflict, Code: CodeConflict, Message: msg, Err: err})
		return
	}
	st, err := s.c.Mark(ctx, agency, id, state, broker.MarkOptions{Note: req.Note, Staff: req.Staff, Wait: s.cfg.TrackWait})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, statusResult{ID: st.ID, Of: id, State: state, Code: state.Code()})
}

// eventsPing spaces an event stream's pings and the checks that its token
// still gives it the agency (tests shorten it).
var eventsPing = 15 * time.Second

// stillAllowed tells whether token still acts for agency in r. A refusal
// ends the stream; a check that could not be made now (the directory or
// the token store unreachable) does not.
func (s *Server) stillAllowed(r *http.Request, token, agency string) bool {
	a, err := s.identify(r, token)
	var ae *Error
	if errors.As(err, &ae) && ae.Status < http.StatusInternalServerError {
		s.log.Info("event stream ended: its token no longer gives the agency", "agency", agency, "err", err)
		return false
	}
	return err != nil || a == agency
}

// getEvents streams, as Server-Sent Events, the tracking of every document
// the agency sent or received: first the current state of each, then every
// change as it happens. Each event is "tracking" with the pair's tracking
// as JSON and its revision as id.
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request, agency string) {
	key := tokenOf(r)
	if open, ok := s.streams.acquire(key); !ok {
		w.Header().Set("Retry-After", "15")
		writeError(w, apiError(http.StatusTooManyRequests, CodeTooManyStreams,
			"%d event streams are open with this token, at most %d: close one (each open page holds one) or use another token", open, s.limits.MaxEventStreams))
		return
	}
	defer s.streams.release(key)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.draining:
			cancel()
		case <-ctx.Done():
		}
	}()
	ch, err := s.c.Watch(ctx, agency)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sw := newStallWriter(w, s.limits.WriteStall)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // let proxies pass events at once
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := fmt.Fprint(sw, "retry: 3000\n: docaxis events for "+agency+"\n\n"); err != nil {
		return
	}
	_ = sw.Flush()
	ping := time.NewTicker(eventsPing)
	defer ping.Stop()
	token, _ := bearer(r)
	for {
		select {
		case t, ok := <-ch:
			if !ok {
				return
			}
			if t.Seq == 0 {
				// No copy behind the pair: a receipt or status alone
				// (for an envelope never addressed to its reporter) makes
				// nothing an agency may see.
				continue
			}
			b, err := json.Marshal(t)
			if err != nil {
				continue
			}
			if _, err := fmt.Fprintf(sw, "event: tracking\nid: %d\ndata: %s\n\n", t.Revision, b); err != nil {
				return
			}
		case <-ping.C:
			// A stream outlives no refusal its request would get now: the
			// token revoked, or the system no longer serving the agency.
			if !s.stillAllowed(r, token, agency) {
				return
			}
			// Keeps idle connections (and proxies) from timing out.
			if _, err := fmt.Fprint(sw, ": ping\n\n"); err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
		if err := sw.Flush(); err != nil {
			return
		}
	}
}
