package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

// edXML in and out for document systems that speak it (QCVN 102:2016).

func (s *Server) edxmlRoutes() {
	s.mux.HandleFunc("POST /v1/edxml", s.authed(s.postEdXML))
	s.mux.HandleFunc("GET /v1/envelopes/{id}/edxml", s.authed(s.getEdXML))
	s.mux.HandleFunc("GET /v1/envelopes/{id}/edxml/statuses", s.authed(s.getEdXMLStatuses))
}

// postEdXML sends an edXML document or status as the caller's agency. The
// body is spooled to a temporary file (bounded by the request limit) so
// attachments decode from it as they stream into the store.
func (s *Server) postEdXML(w http.ResponseWriter, r *http.Request, agency string) {
	body := http.MaxBytesReader(w, r.Body, s.limits.MaxRequestBytes)
	tmp, err := os.CreateTemp("", "docaxis-edxml-*")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := edxml.ParseReaderAt(tmp, n)
	if err != nil {
		writeError(w, apiError(http.StatusBadRequest, CodeBadRequest, "%v", err))
		return
	}
	res, err := s.c.SendEdXML(r.Context(), agency, m, broker.EdXMLStatusWait(s.cfg.TrackWait))
	if errors.Is(err, broker.ErrEdXMLSender) {
		writeError(w, apiError(http.StatusForbidden, CodeForbidden, "%v", err))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if res.Kind == "document" {
		s.waitTracked(r.Context(), res.ID, len(res.Recipients))
	}
	writeJSON(w, http.StatusCreated, res)
}

// getEdXML writes the envelope as an edXML document message.
func (s *Server) getEdXML(w http.ResponseWriter, r *http.Request, agency string) {
	ctx := r.Context()
	id := r.PathValue("id")
	a, err := s.access(ctx, agency, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	doc, err := s.document(r, a, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// The rule of GET .../attachments/{name}: listing a hash in a signed
	// envelope is no proof of holding the bytes. An export that left such
	// an attachment out would pass for the whole document, so none is made.
	if err := s.mayReadAll(ctx, agency, id, doc.Attachments); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.edxml"`, id))
	// Attachments stream from the store, verified; an error past the first
	// byte can only cut the response short.
	if err := edxml.Write(w, doc, func(att envelope.Attachment) (io.ReadCloser, error) { return s.c.OpenAttachment(ctx, att) }); err != nil {
		s.log.Warn("edXML export cut short", "envelope", id, "err", err)
	}
}

// mayReadAll refuses (403) when agency may not read one of atts, the
// attachments of envelope id, naming them.
func (s *Server) mayReadAll(ctx context.Context, agency, id string, atts []envelope.Attachment) error {
	var unheld []string
	for _, att := range atts {
		ok, err := s.c.MayRead(ctx, att.SHA256, agency)
		if err != nil {
			return err
		}
		if !ok {
			unheld = append(unheld, strconv.Quote(att.Name))
		}
	}
	if len(unheld) > 0 {
		return apiError(http.StatusForbidden, CodeForbidden, "envelope %s lists attachments %s may not read (their sender never held those bytes): %s; no edXML is made of it, GET /v1/envelopes/%s has the envelope",
			id, agency, strings.Join(unheld, ", "), id)
	}
	return nil
}

// edxmlStatus is one status in edXML, as GET .../edxml/statuses lists them.
type edxmlStatus struct {
	Recipient string         `json:"recipient"`
	State     envelope.State `json:"state"`
	Code      string         `json:"code"`
	ID        string         `json:"id"`
	EdXML     string         `json:"edxml"`
}

// getEdXMLStatuses lists the receipts and statuses of an envelope as edXML
// status messages (a recipient sees its own).
func (s *Server) getEdXMLStatuses(w http.ResponseWriter, r *http.Request, agency string) {
	ctx := r.Context()
	id := r.PathValue("id")
	a, err := s.access(ctx, agency, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	doc, err := s.document(r, a, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	statuses, err := s.c.Statuses(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []edxmlStatus{}
	for _, rs := range statuses {
		st := rs.Signed.Envelope
		if st.Status.State.Code() == "" || (a.role == "recipient" && rs.Recipient != agency) {
			continue
		}
		edxml.SetResponseFor(st, doc)
		var b strings.Builder
		if err := edxml.Write(&b, st, nil); err != nil {
			s.fail(w, r, err)
			return
		}
		out = append(out, edxmlStatus{Recipient: rs.Recipient, State: st.Status.State, Code: st.Status.State.Code(), ID: st.ID, EdXML: b.String()})
	}
	writeJSON(w, http.StatusOK, out)
}

// document reads the verified envelope behind an access check.
func (s *Server) document(r *http.Request, a *access, id string) (*envelope.Envelope, error) {
	if a.seq == 0 {
		return nil, apiError(http.StatusNotFound, CodeNotFound, "envelope %s: the record holds statuses but no copy", id)
	}
	se, err := s.readEnvelope(r.Context(), a.seq)
	if err != nil {
		return nil, err
	}
	if se.Err != nil {
		return nil, se.Err
	}
	return se.Envelope, nil
}
