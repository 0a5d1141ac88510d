package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
)

// sendResult answers POST /v1/envelopes.
type sendResult struct {
	ID         string   `json:"id"`
	Digest     string   `json:"digest"`
	Recipients []string `json:"recipients"`
	Duplicate  bool     `json:"duplicate,omitempty"`
}

// postEnvelope sends a document. The body is multipart/form-data, read
// part by part: a "meta" part (envelope fields as JSON) that the server
// signs, or a "signed" part the DMS signed itself, then "file" parts that
// stream straight into the attachment store, never whole in memory. The
// envelope part is checked in full before any file is stored, so that a
// request that is refused stores nothing; what a request stored before it
// failed later is removed (upload.go).
func (s *Server) postEnvelope(w http.ResponseWriter, r *http.Request, agency string) {
	ctx := r.Context()
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		writeError(w, apiError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia,
			"want Content-Type multipart/form-data with a part 'meta' (JSON) or 'signed', and 'file' parts; got %q", r.Header.Get("Content-Type")))
		return
	}
	if r.ContentLength > s.limits.MaxRequestBytes {
		writeError(w, apiError(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body of %d bytes is over the limit of %d bytes", r.ContentLength, s.limits.MaxRequestBytes))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.limits.MaxRequestBytes)
	mr := multipart.NewReader(r.Body, params["boundary"])
	up := s.newUpload(agency)
	sent := false
	defer func() { up.finish(ctx, sent) }()
	var (
		e      *envelope.Envelope // from 'meta'
		signed *envelope.Signed   // from 'signed', verified
		dup    *sendResult        // the id was sent before by this agency
		atts   []envelope.Attachment
	)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.fail(w, r, badMultipart(err))
			return
		}
		err = func() error {
			defer part.Close()
			switch name := part.FormName(); name {
			case "meta", "signed":
				if e != nil || signed != nil {
					return apiError(http.StatusBadRequest, CodeBadRequest, "more than one 'meta' or 'signed' part")
				}
				if name == "meta" {
					var chosen bool
					if e, chosen, err = s.readMeta(ctx, part, agency); err != nil || !chosen {
						return err // an id the server made is new
					}
					dup, err = s.checkID(ctx, agency, e.ID, e.To)
					return err
				}
				if signed, err = s.readSigned(ctx, part, agency); err != nil {
					return err
				}
				dup, err = s.checkID(ctx, agency, signed.Envelope.ID, signed.Envelope.To)
				return err
			case "file":
				if e == nil && signed == nil {
					return apiError(http.StatusBadRequest, CodeBadRequest, "a 'file' part before the 'meta' or 'signed' part: send the envelope part first, so that a request that is refused stores nothing")
				}
				if dup != nil {
					// A retry of a send that went through: its files are
					// stored already.
					_, err := io.Copy(io.Discard, part)
					return readError("part 'file'", err)
				}
				a, err := s.storeFile(ctx, up, part, atts, signed)
				if err == nil {
					atts = append(atts, a)
				}
				return err
			default:
				return apiError(http.StatusBadRequest, CodeBadRequest, "unexpected part %q: want 'meta' or 'signed', and 'file' parts", name)
			}
		}()
		if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	var res *broker.SendResult
	switch {
	case e == nil && signed == nil:
		writeError(w, apiError(http.StatusBadRequest, CodeBadRequest, "missing part 'meta' (the envelope fields as JSON) or 'signed' (an envelope the DMS signed)"))
		return
	case dup != nil:
		sent = true
		w.Header().Set("Location", "/v1/envelopes/"+dup.ID)
		writeJSON(w, http.StatusOK, dup) // a DMS retrying a send may treat it as success
		return
	case signed != nil:
		// The manifest is in the signature; files posted alongside were
		// only put in the store, where SendSigned checks they are.
		res, err = s.c.SendSigned(ctx, signed.Raw)
	default:
		e.Attachments = atts
		res, err = s.c.Send(ctx, e)
	}
	duplicate := errors.Is(err, broker.ErrDuplicate) && res != nil
	if err != nil && !duplicate {
		s.fail(w, r, err)
		return
	}
	sent = true
	s.waitTracked(ctx, res.ID, len(res.Recipients))
	w.Header().Set("Location", "/v1/envelopes/"+res.ID)
	status := http.StatusCreated
	if duplicate {
		status = http.StatusOK // a DMS retrying a send may treat it as success
	}
	writeJSON(w, status, sendResult{ID: res.ID, Digest: res.Digest, Recipients: res.Recipients, Duplicate: duplicate})
}

func badMultipart(err error) error { return readError("multipart body", err) }

// readMeta decodes the envelope fields a DMS may set, and checks them
// before any file is streamed, so that a bad request fails fast. chosen
// tells whether the DMS chose the envelope id.
func (s *Server) readMeta(ctx context.Context, part *multipart.Part, agency string) (e *envelope.Envelope, chosen bool, err error) {
	e = new(envelope.Envelope)
	if err := decodeJSON(part, s.limits.MaxJSONBytes, "part 'meta'", e); err != nil {
		return nil, false, err
	}
	chosen = e.ID != ""
	switch {
	case e.From != "" && e.From != agency:
		return nil, false, apiError(http.StatusForbidden, CodeForbidden, "meta.from is %s but the token belongs to %s", e.From, agency)
	case len(e.Attachments) > 0:
		return nil, false, apiError(http.StatusBadRequest, CodeBadRequest, "meta.attachments: attachments come as 'file' parts, the server fills the manifest")
	case e.Status != nil || e.Kind == envelope.KindStatus:
		return nil, false, apiError(http.StatusBadRequest, CodeBadRequest, "meta: statuses are set with POST /v1/envelopes/{id}/status")
	case len(e.To) == 0:
		return nil, false, apiError(http.StatusBadRequest, CodeBadRequest, "meta.to: no recipients (a list of agency codes)")
	case e.Subject == "":
		return nil, false, apiError(http.StatusBadRequest, CodeBadRequest, "meta.subject: empty")
	}
	e.From = agency
	if e.ID == "" {
		e.ID = envelope.NewID()
	}
	if e.Kind == "" {
		e.Kind = envelope.KindDocument
	}
	if e.Created.IsZero() {
		e.Created = time.Now().UTC().Truncate(time.Millisecond)
	}
	if err := e.Validate(envelope.AllowCodes(s.known(ctx))); err != nil {
		return nil, false, err
	}
	if err := s.checkRecipients(ctx, e.To); err != nil {
		return nil, false, err
	}
	return e, chosen, nil
}

// checkRecipients refuses, before any file part streams in, recipients
// the directory does not know or that take no mail (suspended, deleted,
// withdrawn): Send refuses them too, but only after the upload.
func (s *Server) checkRecipients(ctx context.Context, to []string) error {
	for _, code := range to {
		a, err := s.c.LookupAgency(ctx, code)
		if err != nil {
			return err
		}
		if err := a.CheckRoutable(); err != nil {
			return err // it names the agency and why
		}
	}
	return nil
}

// known tells registered codes, so that non-standard ones validate.
func (s *Server) known(ctx context.Context) func(string) bool {
	return func(code string) bool {
		_, err := s.c.LookupAgency(ctx, code)
		return err == nil
	}
}

// readSigned reads and verifies an envelope the DMS signed, before any
// file is stored: its signature, chain and sender, and its recipients.
func (s *Server) readSigned(ctx context.Context, part *multipart.Part, agency string) (*envelope.Signed, error) {
	raw, err := io.ReadAll(io.LimitReader(part, envelope.MaxWireSize+1))
	if err != nil {
		return nil, readError("part 'signed'", err)
	}
	if len(raw) > envelope.MaxWireSize {
		return nil, &TooLargeError{What: "part 'signed'", Limit: envelope.MaxWireSize}
	}
	raw = bytes.TrimSpace(raw)
	// Who it claims to be from first, so that another agency's envelope is
	// refused as such even when it would not verify.
	e, err := envelope.Peek(raw)
	if err != nil {
		return nil, fmt.Errorf("part 'signed': %w", err)
	}
	if e.From != agency {
		return nil, apiError(http.StatusForbidden, CodeForbidden, "part 'signed': envelope is from %s but the token belongs to %s", e.From, agency)
	}
	if e.Kind == envelope.KindStatus {
		return nil, apiError(http.StatusBadRequest, CodeBadRequest, "part 'signed': a status envelope; statuses are set with POST /v1/envelopes/{id}/status")
	}
	sv, err := s.c.Verifier().Verify(raw)
	if err != nil {
		return nil, fmt.Errorf("part 'signed': %w", err)
	}
	if sv.Envelope.From != agency {
		return nil, apiError(http.StatusForbidden, CodeForbidden, "part 'signed': envelope is from %s but the token belongs to %s", sv.Envelope.From, agency)
	}
	if err := s.checkRecipients(ctx, sv.Envelope.To); err != nil {
		return nil, err
	}
	return sv, nil
}

// checkID refuses an envelope id that another agency already used, and
// recognises a retry of a send that went through: same id, same sender,
// every recipient already holding its copy. That send is answered again
// (dup) and nothing is stored or sent twice.
func (s *Server) checkID(ctx context.Context, agency, id string, to []string) (dup *sendResult, err error) {
	taken := func() error {
		// Who holds it is not the caller's to know.
		return fmt.Errorf("%w: envelope id %s is in use by another sender; leave meta.id out to get a fresh one", broker.ErrIDTaken, id)
	}
	bound, err := s.c.EnvelopeSender(ctx, id)
	switch {
	case err == nil && bound != agency:
		return nil, taken()
	case err != nil && !errors.Is(err, broker.ErrNotFound):
		return nil, fmt.Errorf("check envelope id %s: %w", id, err)
	}
	// Ids tracked before they were bound (or while the binding is on its
	// way) count too.
	senders, err := s.c.IDSenders(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("check envelope id %s: %w", id, err)
	}
	if slices.ContainsFunc(senders, func(sd string) bool { return sd != agency }) {
		return nil, taken()
	}
	if len(senders) == 0 {
		return nil, nil
	}
	ds, role, err := s.c.StatusFor(ctx, id, agency)
	if errors.Is(err, broker.ErrNotFound) || role != "sender" {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("check envelope id %s: %w", id, err)
	}
	res := &sendResult{ID: id, Duplicate: true, Recipients: []string{}}
	for _, rcpt := range to {
		i := slices.IndexFunc(ds.Recipients, func(t broker.Tracking) bool { return t.Recipient == rcpt && t.Seq > 0 })
		if i < 0 {
			return nil, nil // partly sent: sending again completes it
		}
		if res.Digest == "" {
			res.Digest = ds.Recipients[i].Digest
		}
		res.Recipients = append(res.Recipients, rcpt)
	}
	return res, nil
}

// readError reports a request body that could not be read: too large, or
// broken off.
func readError(what string, err error) error {
	var mbe *http.MaxBytesError
	var tle *TooLargeError
	var sbe *SlowBodyError
	if err == nil || errors.As(err, &mbe) || errors.As(err, &tle) || errors.As(err, &sbe) {
		return err
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf("read %s: %v", what, err), Err: err}
}

// decodeJSON decodes one JSON value strictly: unknown fields, wrong types,
// duplicate or case-variant keys and trailing data are errors that name
// what is wrong.
func decodeJSON(r io.Reader, limit int64, what string, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return readError(what, err)
	}
	if int64(len(data)) > limit {
		return &TooLargeError{What: what, Limit: limit}
	}
	// Malformed JSON is left to the decoder below, which names it the way
	// clients know; what a decoder would read differently is refused here.
	if err := envelope.CheckJSONKeys(data, envelope.ExactFields(v)); err != nil && !errors.Is(err, envelope.ErrJSONSyntax) {
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf("%s: %v", what, err), Err: err}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return apiError(http.StatusBadRequest, CodeBadRequest, "%s: empty, want a JSON object", what)
		}
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf("%s: bad JSON: %v", what, err), Err: err}
	}
	if dec.More() {
		return apiError(http.StatusBadRequest, CodeBadRequest, "%s: trailing data after the JSON object", what)
	}
	return nil
}

// waitTracked waits (bounded) until the tracker has recorded every copy,
// so that the sender can read the document right after sending it.
func (s *Server) waitTracked(ctx context.Context, id string, copies int) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.TrackWait)
	defer cancel()
	for {
		// A status read from the record (Note set) is not yet tracked.
		if ds, err := s.c.Status(ctx, id); err == nil && ds.Note == "" && len(ds.Recipients) >= copies {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Server) getEnvelope(w http.ResponseWriter, r *http.Request, agency string) {
	id := r.PathValue("id")
	a, err := s.access(r.Context(), agency, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	se := a.copy
	if wantsJOSE(r) {
		w.Header().Set("Content-Type", "application/jose")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(se.Raw)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(se, a.role))
}

func wantsJOSE(r *http.Request) bool {
	for _, v := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(v)); err == nil && mt == "application/jose" {
			return true
		}
	}
	return false
}

// getAttachment streams an attachment from the store, checking size and
// SHA-256 on the way. Only an attachment the caller's own copy lists, once
// verified, is served. A mismatch found at the end aborts the connection,
// so the client never sees a clean end of tampered content.
func (s *Server) getAttachment(w http.ResponseWriter, r *http.Request, agency string) {
	ctx := r.Context()
	id, name := r.PathValue("id"), r.PathValue("name")
	a, err := s.access(ctx, agency, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	se := a.copy
	if se.Envelope == nil {
		writeError(w, apiError(http.StatusNotFound, CodeNotFound, "envelope %s cannot be decoded", id))
		return
	}
	if !se.Verified() {
		s.fail(w, r, se.Err)
		return
	}
	i := slices.IndexFunc(se.Envelope.Attachments, func(at envelope.Attachment) bool { return at.Name == name })
	if i < 0 {
		writeError(w, apiError(http.StatusNotFound, CodeNotFound, "envelope %s has no attachment %q", id, name))
		return
	}
	att := se.Envelope.Attachments[i]
	// The same rule as the attachment service: a listing is no proof of
	// holding the bytes; the tracker grants access from what the sender held.
	if ok, err := s.c.MayRead(ctx, att.SHA256, agency); err != nil {
		s.fail(w, r, err)
		return
	} else if !ok {
		writeError(w, apiError(http.StatusNotFound, CodeNotFound, "attachment %q of envelope %s is not available to %s: its sender never held those bytes", name, id, agency))
		return
	}
	rc, err := s.c.OpenAttachment(ctx, att)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rc.Close()
	h := w.Header()
	mt := att.MediaType
	if mt == "" {
		mt = "application/octet-stream"
	}
	h.Set("Content-Type", mt)
	h.Set("Content-Length", strconv.FormatInt(att.Size, 10))
	h.Set("Content-Disposition", contentDisposition(att.Name))
	h.Set("ETag", `"`+att.SHA256+`"`)
	if sum, err := hex.DecodeString(att.SHA256); err == nil {
		h.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
	}
	h.Set("Cache-Control", "private, no-cache")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(newStallWriter(w, s.limits.WriteStall), rc); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("attachment download aborted", "envelope", id, "name", name, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
}

// contentDisposition names a download: an ASCII fallback and the exact
// UTF-8 name (RFC 6266, RFC 8187), so Vietnamese names survive.
func contentDisposition(name string) string {
	ascii := strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '_'
		}
		return r
	}, fold(name))
	return fmt.Sprintf(`attachment; filename="%s"; filename*=UTF-8''%s`, ascii, extValue(name))
}

// extValue percent-encodes s as an RFC 8187 ext-value: every byte but its
// attr-chars. url.PathEscape would leave '=', '@' and ':' as they are,
// which end the value for a strict reader and lose the whole header.
func extValue(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func (s *Server) getMe(w http.ResponseWriter, r *http.Request, agency string) {
	v := agencyView{Code: agency}
	if a, err := s.c.LookupAgency(r.Context(), agency); err == nil {
		v.Name = a.Name
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) getAgencies(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	if q.Has("since") || q.Has("parent") {
		s.agencyChanges(w, r)
		return
	}
	list, err := s.c.Agencies(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]agencyView, 0, len(list))
	for _, a := range list {
		out = append(out, agencyView{Code: a.Code, Name: a.Name})
	}
	writeJSON(w, http.StatusOK, map[string]any{"agencies": out})
}

// directoryEntry is an agency as GET /v1/agencies?since= lists it: the
// directory's public fields, no key material.
type directoryEntry struct {
	Code    string    `json:"code"`
	Name    string    `json:"name"`
	Parent  string    `json:"parent,omitempty"`
	OldCode string    `json:"old_code,omitempty"`
	Email   string    `json:"email,omitempty"`
	System  string    `json:"system,omitempty"`
	State   string    `json:"state"`
	Deleted time.Time `json:"deleted,omitzero"`
	Version uint64    `json:"version"`
}

// agencyChanges answers GET /v1/agencies?since=VERSION[&parent=CODE]: the
// entries changed after that directory version (deletions as state
// deleted), and the version to ask from next.
func (s *Server) agencyChanges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since uint64
	if v := q.Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, apiError(http.StatusBadRequest, CodeBadRequest, "since=%q: want a directory version (a non-negative integer)", clip(v, 32)))
			return
		}
		since = n
	}
	parent := q.Get("parent")
	if parent != "" && envelope.CheckNonStandardCode(parent) != nil {
		writeError(w, apiError(http.StatusBadRequest, CodeBadRequest, "parent=%q: not an agency code", clip(parent, 64)))
		return
	}
	ch, err := s.c.DirectoryChanges(r.Context(), since)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]directoryEntry, 0, len(ch.Agencies))
	for _, a := range ch.Agencies {
		if parent != "" && a.Parent != parent {
			continue
		}
		state := a.State
		if state == "" {
			state = broker.StateActive
		}
		out = append(out, directoryEntry{Code: a.Code, Name: a.Name, Parent: a.Parent, OldCode: a.OldCode, Email: a.Email,
			System: a.System, State: state, Deleted: a.Deleted, Version: a.Version})
	}
	writeJSON(w, http.StatusOK, map[string]any{"since": ch.Since, "version": ch.Version, "agencies": out})
}

// clip shortens what a caller sent before it is quoted back.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
