package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/docaxis/docaxis/broker/audit"
)

// EvidenceSource writes a document's evidence package (a zip, see
// broker/audit EVIDENCE.md) as agency may see it: agency must be the
// sender or a recipient, else the error wraps audit.ErrNoDocument as for
// an id that does not exist. docaxis serve gives an *audit.Reader's
// Evidence with the TSA roots in use.
type EvidenceSource interface {
	Evidence(ctx context.Context, o audit.EvidenceOptions, w io.Writer) (*audit.Manifest, error)
}

// getEvidence: GET /v1/envelopes/{id}/evidence[?attachments=1] answers the
// evidence package of document id for the sender and each recipient;
// anyone else gets 404, as for an id that does not exist.
func (s *Server) getEvidence(w http.ResponseWriter, r *http.Request, agency string) {
	if s.cfg.Evidence == nil {
		writeError(w, apiError(http.StatusNotFound, CodeNotFound, "this bus serves no evidence packages (no audit chain)"))
		return
	}
	id := r.PathValue("id")
	atts := r.URL.Query().Get("attachments")
	if atts != "" && atts != "0" && atts != "1" && atts != "true" && atts != "false" {
		writeError(w, apiError(http.StatusBadRequest, CodeBadRequest, "attachments=%q: want 1 or 0", atts))
		return
	}
	// Written whole before it is sent: a failure half-way must be an
	// error answer, not a truncated zip. A file keeps memory flat when
	// attachments come along.
	f, err := os.CreateTemp("", "docaxis-evidence-*.zip")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	o := audit.EvidenceOptions{ID: id, Agency: agency, Attachments: atts == "1" || atts == "true"}
	// The rule of GET .../attachments/{name}: an attachment the agency may
	// not read is left out, and the manifest's warnings say so.
	o.MayRead = func(ctx context.Context, sum string) (bool, error) { return s.c.MayRead(ctx, sum, agency) }
	_, err = s.cfg.Evidence.Evidence(r.Context(), o, f)
	if errors.Is(err, audit.ErrNoDocument) {
		writeError(w, apiError(http.StatusNotFound, CodeNotFound, "no document %q for %s", truncate(id, 64), agency))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	size, err := f.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	// id is a UUID here (Evidence refuses anything else), safe in a name.
	h.Set("Content-Disposition", contentDisposition(audit.EvidenceFile(id)))
	h.Set("Cache-Control", "private, no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(newStallWriter(w, s.limits.WriteStall), f); err != nil {
		panic(http.ErrAbortHandler)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
