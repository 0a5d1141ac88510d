package vxp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
	"github.com/nats-io/nats.go/jetstream"
)

// Receiving: the list of what waits for the system's agencies, the edXML
// of one, and updateStatus.

// messageType reads messagetype: edoc (default) or status.
func messageType(p Params) (string, *Error) {
	switch t := strings.ToLower(p.Get("messagetype")); t {
	case "", TypeEdoc:
		return TypeEdoc, nil
	case TypeStatus:
		return TypeStatus, nil
	default:
		return "", fail(CodeBadRequest, "messagetype %q: want edoc or status", t)
	}
}

func (s *Server) waiting(ctx context.Context, c *caller) ([]entry, string, *Error) {
	typ, e := messageType(c.Params)
	if e != nil {
		return nil, "", e
	}
	if err := s.index.drain(ctx, c.System); err != nil {
		return nil, "", classify("list what waits", err)
	}
	list, err := s.index.list(ctx, c.System, typ)
	if err == nil {
		list, err = s.index.serving(ctx, c.System, list)
	}
	if err != nil {
		return nil, "", classify("list what waits", err)
	}
	return list, typ, nil
}

// getReceivedEdocList lists what waits for any of the system's agencies.
// A status key left over from an earlier updateStatus is not a filter
// (PROTOCOL.md §2).
func (s *Server) getReceivedEdocList(ctx context.Context, _ http.ResponseWriter, _ *http.Request, c *caller) (answer, *Error) {
	list, typ, e := s.waiting(ctx, c)
	if e != nil {
		return nil, e
	}
	data := make([]map[string]string, 0, len(list))
	for _, w := range list {
		status, desc := "waiting", "waiting for "+w.To
		if w.Status != "" {
			status, desc = w.Status, fmt.Sprintf("%s, %d failed fetch(es)", w.Status, w.Fails)
		}
		if w.Type == TypeStatus {
			desc = "status " + w.Code + " on " + w.Of
		}
		updated := w.Updated
		if updated.IsZero() {
			updated = w.Stored
		}
		data = append(data, map[string]string{
			"docId": w.ID, "serviceType": "eDoc", "messageType": typ,
			"created_time": edxml.FormatTimestamp(w.Stored), "updated_time": edxml.FormatTimestamp(updated),
			"from": w.From, "to": w.To, "status": status, "status_desc": desc,
		})
	}
	a := ok("OK")
	a["data"] = data
	return a, nil
}

func (s *Server) countReceiveEdoc(ctx context.Context, w http.ResponseWriter, r *http.Request, c *caller) (answer, *Error) {
	c.Params.vals["messagetype"] = TypeEdoc
	return s.count(ctx, c)
}

func (s *Server) countReceiveStatus(ctx context.Context, w http.ResponseWriter, r *http.Request, c *caller) (answer, *Error) {
	c.Params.vals["messagetype"] = TypeStatus
	return s.count(ctx, c)
}

func (s *Server) count(ctx context.Context, c *caller) (answer, *Error) {
	list, _, e := s.waiting(ctx, c)
	if e != nil {
		return nil, e
	}
	a := ok("OK")
	a["count"] = len(list)
	return a, nil
}

// docID reads the docId parameter.
func docID(p Params) (string, *Error) {
	id := strings.TrimSpace(p.Get("docId"))
	if id == "" {
		return "", fail(CodeBadRequest, "no docId in the header")
	}
	return strings.ToLower(id), nil
}

// entryOf returns what waits for the system under docId. A document of
// another system, or none, is the same answer; so is one indexed for the
// system before its agency moved to another (serving).
func (s *Server) entryOf(ctx context.Context, c *caller) ([]entry, *Error) {
	id, e := docID(c.Params)
	if e != nil {
		return nil, e
	}
	list, err := s.index.find(ctx, c.System, id)
	if err == nil {
		list, err = s.index.serving(ctx, c.System, list)
	}
	if err != nil {
		return nil, classify("find "+id, err)
	}
	if len(list) == 0 {
		return nil, notWaiting(id, c.System)
	}
	return list, nil
}

func notWaiting(id, sys string) *Error {
	return &Error{Code: CodeNotFound, Desc: fmt.Sprintf("document %s is not waiting for system %s (list with getReceivedEdocList; done ones are gone)", id, sys), Err: errNotWaiting}
}

// getEdoc answers with the edXML, base64 in data. The answer streams:
// attachments go from the store through the base64 encoder to the
// client, never whole in memory.
func (s *Server) getEdoc(ctx context.Context, w http.ResponseWriter, _ *http.Request, c *caller) (answer, *Error) {
	list, e := s.entryOf(ctx, c)
	if e != nil {
		return nil, e
	}
	write, e := s.edxmlOf(ctx, list[0])
	if e != nil {
		return nil, e
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if _, err := io.WriteString(w, `{"status":"OK","ErrorCode":"0","ErrorDesc":"OK","data":"`); err != nil {
		return nil, nil
	}
	enc := base64.NewEncoder(base64.StdEncoding, w)
	if err := write(enc); err != nil {
		// Past the first byte only cutting the answer short is left: the
		// SDK then fails to read it and the DMS says fail.
		s.log.Warn("vxp: getEdoc cut short", "envelope", list[0].ID, "err", err)
		return nil, nil
	}
	_ = enc.Close()
	_, _ = io.WriteString(w, "\"}\n")
	return nil, nil
}

// downloadEdoc answers with the raw edXML.
func (s *Server) downloadEdoc(ctx context.Context, w http.ResponseWriter, _ *http.Request, c *caller) (answer, *Error) {
	list, e := s.entryOf(ctx, c)
	if e != nil {
		return nil, e
	}
	write, e := s.edxmlOf(ctx, list[0])
	if e != nil {
		return nil, e
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if err := write(w); err != nil {
		s.log.Warn("vxp: downloadEdoc cut short", "envelope", list[0].ID, "err", err)
	}
	return nil, nil
}

// edxmlOf prepares the edXML of a waiting entry; errors before anything
// is written come back as answers.
func (s *Server) edxmlOf(ctx context.Context, e entry) (func(io.Writer) error, *Error) {
	open := func(a envelope.Attachment) (io.ReadCloser, error) { return s.c.OpenAttachment(ctx, a) }
	if e.Type == TypeEdoc {
		se, err := s.c.ReadEnvelope(ctx, e.Seq)
		if err != nil {
			return nil, classify("getEdoc "+e.ID, err)
		}
		if se.Err != nil {
			return nil, classify("getEdoc "+e.ID, se.Err)
		}
		if write := s.original(ctx, se.Envelope); write != nil {
			return write, nil // the sender's own edXML, its files in it
		}
		// Listing a file's hash in a signed envelope is no proof of
		// holding its bytes: only files the sender held reach the
		// recipient, as on every other way out (GET .../attachments).
		for _, a := range se.Envelope.Attachments {
			ok, err := s.c.MayRead(ctx, a.SHA256, e.To)
			if err != nil {
				return nil, classify("getEdoc "+e.ID, err)
			}
			if !ok {
				return nil, fail(CodeForbidden, "getEdoc %s: it lists attachment %q, whose bytes its sender never held: no edXML is made of it (updateStatus fail, or done to refuse it)", e.ID, a.Name)
			}
		}
		return func(w io.Writer) error { return edxml.Write(w, se.Envelope, open) }, nil
	}
	st, err := s.c.JetStream().Stream(ctx, record.Stream)
	if err != nil {
		return nil, classify("getEdoc "+e.ID, err)
	}
	msg, err := st.GetMsg(ctx, e.Seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fail(CodeNotFound, "getEdoc %s: the status is no longer in the record", e.ID)
	}
	if err != nil {
		return nil, classify("getEdoc "+e.ID, err)
	}
	signed, err := s.c.Verifier().Verify(msg.Data)
	if err != nil {
		return nil, classify("getEdoc "+e.ID, err)
	}
	status := signed.Envelope
	// The status names the document as the system knows it (its edXML
	// DocumentId, code, date), from the document itself.
	if t, err := s.c.Tracking(ctx, e.Of, e.From); err == nil && t.Seq > 0 {
		if doc, err := s.c.ReadEnvelope(ctx, t.Seq); err == nil && doc.Envelope != nil {
			edxml.SetResponseFor(status, doc.Envelope)
		}
	}
	return func(w io.Writer) error { return edxml.Write(w, status, nil) }, nil
}

// updateStatus: done acknowledges through the one receive path (the
// sender gets the signed delivered receipt) and takes the document off
// the list; fail keeps it listed and counts it; the other values are
// kept as its status.
func (s *Server) updateStatus(ctx context.Context, _ http.ResponseWriter, _ *http.Request, c *caller) (answer, *Error) {
	status := strings.ToLower(strings.TrimSpace(c.Params.Get("status")))
	switch status {
	case "done", "fail", "processing", "inbox", "rejection", "acceptance", "assignment", "cancellation":
	case "":
		return nil, fail(CodeBadRequest, "updateStatus: no status in the header (done, fail, processing)")
	default:
		return nil, fail(CodeBadRequest, "updateStatus: status %q: want done, fail or processing", status)
	}
	list, e := s.entryOf(ctx, c)
	if e != nil {
		return nil, e
	}
	kept := 0
	for _, w := range list {
		if status == "done" {
			if e := s.done(ctx, w); e != nil {
				return nil, e
			}
			continue
		}
		err := s.index.change(ctx, w, func(w *entry) {
			w.Status = status
			if status == "fail" {
				w.Fails++
			}
			w.Updated = nowUTC()
		})
		if errors.Is(err, errNotWaiting) {
			continue // done meanwhile: it stays off the list
		}
		if err != nil {
			return nil, classify("updateStatus", err)
		}
		kept++
	}
	if status != "done" && kept == 0 {
		return nil, notWaiting(list[0].ID, c.System)
	}
	return ok(fmt.Sprintf("%s: %s", list[0].ID, status)), nil
}

// done acknowledges a waiting document for its agency (a status is only
// marked received) and removes it from the list. A document that fails
// the recipient's checks is refused by the receive path (invalid receipt,
// quarantine) and leaves the list too.
func (s *Server) done(ctx context.Context, w entry) *Error {
	if w.Type == TypeStatus {
		if err := s.c.MarkHandedOver(ctx, w.To, w.ID); err != nil {
			return classify("updateStatus", err)
		}
	}
	if w.Type == TypeEdoc {
		_, err := s.c.Acknowledge(ctx, w.To, w.ID, broker.WaitDelivered(s.cfg.TrackWait))
		if err != nil && !errors.Is(err, broker.ErrUnverified) {
			return classify("acknowledge "+w.ID+" for "+w.To, err)
		}
		if err != nil {
			_ = s.index.remove(ctx, w)
			return &Error{Code: CodeBadRequest, Desc: fmt.Sprintf("document %s refused for %s: %v", w.ID, w.To, err), Err: err}
		}
	}
	if err := s.index.remove(ctx, w); err != nil {
		return classify("updateStatus", err)
	}
	return nil
}

// original returns a writer of the edXML file a document came from, as
// its sender's system sent it (its attachments, placeholders and XML
// signature as they were), when the envelope carries it and it says what
// the signed envelope says: sent by the envelope's sender, to its
// recipients. Otherwise nil: the edXML is written from the envelope.
func (s *Server) original(ctx context.Context, e *envelope.Envelope) func(io.Writer) error {
	var att *envelope.Attachment
	for i, a := range e.Attachments {
		if a.Name == edxml.OriginalName && a.MediaType == edxml.OriginalMediaType {
			att = &e.Attachments[i]
		}
	}
	if att == nil {
		return nil
	}
	tmp, err := os.CreateTemp("", "docaxis-vxp-out-*.edxml")
	if err != nil {
		return nil
	}
	drop := func() { tmp.Close(); os.Remove(tmp.Name()) }
	rc, err := s.c.OpenAttachment(ctx, *att)
	if err != nil {
		drop()
		return nil
	}
	n, err := io.Copy(tmp, rc)
	rc.Close()
	if err != nil {
		drop()
		return nil
	}
	m, err := edxml.ParseReaderAt(tmp, n)
	if err != nil || m.IsStatus() || !sameParties(m.Document().MessageHeader, e) {
		drop()
		return nil
	}
	return func(w io.Writer) error {
		defer drop()
		_, err := io.Copy(w, io.NewSectionReader(tmp, 0, n))
		return err
	}
}

// sameParties: the file's From is the envelope's, and every envelope
// recipient is among its To.
func sameParties(h edxml.MessageHeader, e *envelope.Envelope) bool {
	if h.From.OrganID != e.From {
		return false
	}
	to := map[string]bool{}
	for _, o := range h.To {
		to[o.OrganID] = true
	}
	for _, r := range e.To {
		if !to[r] {
			return false
		}
	}
	return true
}
