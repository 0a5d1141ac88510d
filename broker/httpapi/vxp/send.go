package vxp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

// sendEdoc sends an edXML document or status for one of the calling
// system's agencies. The body (the file and the SDK's trailing CRLF) is
// spooled to a temporary file, never held in memory: the edXML parser
// reads it from there and attachments stream from it into the store.
func (s *Server) sendEdoc(ctx context.Context, _ http.ResponseWriter, r *http.Request, c *caller) (answer, *Error) {
	want := strings.ToLower(c.Params.Get("hash-file"))
	if want == "" {
		return nil, fail(CodeBadRequest, "sendEdoc: no hash-file in the signed header: the body is not tied to the signature")
	}
	tmp, err := os.CreateTemp("", "docaxis-vxp-*.edxml")
	if err != nil {
		return nil, classify("sendEdoc", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, r.Body)
	if err != nil {
		return nil, classify("sendEdoc: read the body", err)
	}
	size, err := FileSize(tmp, n, want)
	if errors.Is(err, ErrHashFile) {
		return nil, &Error{Code: CodeBadRequest, Desc: "sendEdoc: " + err.Error(), Err: err}
	}
	if err != nil {
		return nil, classify("sendEdoc", err)
	}
	// The same signed call sends nothing twice and answers with the first
	// DocId (calls.go): its claim is taken before anything is sent.
	id, claim, err := s.index.claimCall(ctx, c.System, c.Signed)
	if errors.Is(err, errCallPending) {
		return nil, &Error{Code: CodeInternal, Desc: "sendEdoc: " + err.Error(), Err: err}
	}
	if err != nil {
		return nil, classify("sendEdoc", err)
	}
	if claim == nil {
		a := ok("sent already (the same signed call): " + id)
		a["DocId"] = id
		return a, nil
	}
	sent := false
	defer func() {
		if !sent {
			s.index.releaseCall(ctx, claim)
		}
	}()
	m, err := edxml.ParseReaderAt(tmp, size)
	if err != nil {
		return nil, classify("sendEdoc: edXML", err)
	}
	organ := ""
	if m.IsStatus() {
		organ = m.Status().MessageHeader.From.OrganID
	} else {
		organ = m.Document().MessageHeader.From.OrganID
	}
	// from is the sending agency, or the system itself as some callers
	// write it ("VXP requires it"); either way the file's From must be an
	// agency the system serves.
	if from := c.Params.Get("from"); from != "" && from != c.System && from != organ {
		return nil, fail(CodeForbidden, "sendEdoc: from %q is neither system %s nor the edXML's sender %q", from, c.System, organ)
	}
	if e := s.served(ctx, c.System, organ); e != nil {
		return nil, e
	}
	if m.IsStatus() {
		if st, err := m.Status().State(); err == nil && st == envelope.StateDelivered {
			return s.received(ctx, c, organ, m.Status())
		}
	}
	res, err := s.c.SendEdXML(ctx, organ, m, broker.EdXMLStatusWait(s.cfg.TrackWait))
	if err != nil {
		return nil, classify("sendEdoc", err)
	}
	sent = true
	if err := s.index.recordCall(ctx, claim, res.ID); err != nil {
		// The claim stays: identical calls are told to ask again, and
		// send only once it is stale (calls.go).
		s.log.Error("vxp: sendEdoc call sent but its DocId not remembered", "envelope", res.ID, "err", err)
	}
	if res.Kind == "document" {
		if err := s.index.recordSent(ctx, c.System, sentRecord{ID: res.ID, From: organ, At: time.Now().UTC()}); err != nil {
			s.log.Warn("vxp: sent document not remembered for getSentEdocList", "envelope", res.ID, "err", err)
		}
	}
	a := ok(fmt.Sprintf("sent %s %s", res.Kind, res.ID))
	a["DocId"] = res.ID
	return a, nil
}

// received handles a status 01 (inbox: the document was received) sent
// as edXML: it is the one receive path's acknowledgement, as updateStatus
// done is.
func (s *Server) received(ctx context.Context, c *caller, organ string, st *edxml.Status) (answer, *Error) {
	docID := st.MessageHeader.ResponseFor.DocumentID
	id, found := s.c.ResolveDocumentID(ctx, st.MessageHeader.ResponseFor.OrganID, docID)
	if !found && envelope.IsID(strings.ToLower(docID)) {
		id = strings.ToLower(docID)
	}
	if id == "" {
		return nil, fail(CodeNotFound, "sendEdoc: status 01 answers document %q, not sent through this bus", docID)
	}
	entries, err := s.index.find(ctx, c.System, id)
	if err == nil {
		entries, err = s.index.serving(ctx, c.System, entries)
	}
	if err != nil {
		return nil, classify("sendEdoc", err)
	}
	for _, e := range entries {
		if e.Type == TypeEdoc && e.To == organ {
			if err := s.done(ctx, e); err != nil {
				return nil, err
			}
		}
	}
	if _, err := s.c.Acknowledge(ctx, organ, id, broker.WaitDelivered(s.cfg.TrackWait)); err != nil {
		return nil, classify("sendEdoc: status 01 on "+id, err)
	}
	a := ok("received " + id)
	a["DocId"] = id
	return a, nil
}

// served refuses an agency the system does not serve, or that is deleted
// (broker.Agency.ServedBy); a directory that cannot be read now is no
// refusal.
func (s *Server) served(ctx context.Context, sys, code string) *Error {
	if code == "" {
		return fail(CodeBadRequest, "sendEdoc: the edXML names no From/OrganId")
	}
	a, err := s.c.LookupAgency(ctx, code)
	if err := broker.Served(a, err, sys, code); err != nil {
		if errors.Is(err, failover.ErrUnavailable) {
			return classify("sendEdoc: look up agency "+code, err)
		}
		return &Error{Code: CodeForbidden, Desc: "sendEdoc: " + err.Error(), Err: err}
	}
	return nil
}

// ErrHashFile: a sendEdoc body does not match its signed hash-file.
var ErrHashFile = errors.New("hash-file does not match the body")

// FileSize finds the file in a sendEdoc body of n bytes: the SDK appends
// CRLF and computes hash-file (lossy hex, see LossyHex) over the file
// alone. A body without the CRLF (another client) is taken whole if that
// is what the hash says.
func FileSize(r io.ReaderAt, n int64, hashFile string) (int64, error) {
	want := strings.ToLower(hashFile)
	sizes := []int64{n}
	if n >= 2 {
		var tail [2]byte
		if _, err := r.ReadAt(tail[:], n-2); err == nil && bytes.Equal(tail[:], []byte("\r\n")) {
			sizes = []int64{n - 2, n}
		}
	}
	for _, size := range sizes {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
			return 0, err
		}
		if LossyHex(h.Sum(nil)) == want {
			return size, nil
		}
	}
	return 0, fmt.Errorf("%w: %s is not the SHA-256 of the %d bytes sent (one trailing CRLF removed)", ErrHashFile, hashFile, sizes[0])
}

// errNotWaiting: no such document waits for the system.
var errNotWaiting = errors.New("not waiting for this system")
