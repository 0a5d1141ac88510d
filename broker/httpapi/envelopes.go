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
	"net/url"
	"slices"
	"sort"
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
// signs, or a "signed" part the DMS signed itself; "file" parts stream
// straight into the attachment store, never whole in memory.
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
	var (
		e      *envelope.Envelope
		signed []byte
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
			case "meta":
				if e != nil || signed != nil {
					return apiError(http.StatusBadRequest, CodeBadRequest, "more than one 'meta' or 'signed' part")
				}
				e, err = s.readMeta(ctx, part, agency)
				return err
			case "signed":
				if e != nil || signed != nil {
					return apiError(http.StatusBadRequest, CodeBadRequest, "more than one 'meta' or 'signed' part")
				}
				signed, err = s.readSigned(part, agency)
				return err
			case "file":
				a, err := s.storeFile(ctx, part, atts)
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
	case signed != nil:
		// The manifest is in the signature; files posted alongside were
		// only put in the store, where SendSigned checks they are.
		res, err = s.c.SendSigned(ctx, signed)
	default:
		e.Attachments = atts
		res, err = s.c.Send(ctx, e)
	}
	duplicate := errors.Is(err, broker.ErrDuplicate) && res != nil
	if err != nil && !duplicate {
		s.fail(w, r, err)
		return
	}
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
// before any file is streamed, so that a bad request fails fast.
func (s *Server) readMeta(ctx context.Context, part *multipart.Part, agency string) (*envelope.Envelope, error) {
	e := new(envelope.Envelope)
	if err := decodeJSON(part, s.limits.MaxJSONBytes, "part 'meta'", e); err != nil {
		return nil, err
	}
	switch {
	case e.From != "" && e.From != agency:
		return nil, apiError(http.StatusForbidden, CodeForbidden, "meta.from is %s but the token belongs to %s", e.From, agency)
	case len(e.Attachments) > 0:
		return nil, apiError(http.StatusBadRequest, CodeBadRequest, "meta.attachments: attachments come as 'file' parts, the server fills the manifest")
	case e.Status != nil || e.Kind == envelope.KindStatus:
		return nil, apiError(http.StatusBadRequest, CodeBadRequest, "meta: statuses are set with POST /v1/envelopes/{id}/status")
	case len(e.To) == 0:
		return nil, apiError(http.StatusBadRequest, CodeBadRequest, "meta.to: no recipients (a list of agency codes)")
	case e.Subject == "":
		return nil, apiError(http.StatusBadRequest, CodeBadRequest, "meta.subject: empty")
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
		return nil, err
	}
	for _, to := range e.To {
		if _, err := s.c.LookupAgency(ctx, to); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// known tells registered codes, so that non-standard ones validate.
func (s *Server) known(ctx context.Context) func(string) bool {
	return func(code string) bool {
		_, err := s.c.LookupAgency(ctx, code)
		return err == nil
	}
}

func (s *Server) readSigned(part *multipart.Part, agency string) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(part, envelope.MaxWireSize+1))
	if err != nil {
		return nil, readError("part 'signed'", err)
	}
	if len(raw) > envelope.MaxWireSize {
		return nil, &TooLargeError{What: "part 'signed'", Limit: envelope.MaxWireSize}
	}
	raw = bytes.TrimSpace(raw)
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
	return raw, nil
}

// storeFile streams one file part into the attachment store.
func (s *Server) storeFile(ctx context.Context, part *multipart.Part, have []envelope.Attachment) (envelope.Attachment, error) {
	name := part.FileName()
	if name == "" {
		return envelope.Attachment{}, apiError(http.StatusBadRequest, CodeBadRequest, "a 'file' part without a filename in its Content-Disposition")
	}
	if len(have) >= s.limits.MaxAttachments {
		return envelope.Attachment{}, apiError(http.StatusRequestEntityTooLarge, CodeTooLarge, "more than %d attachments", s.limits.MaxAttachments)
	}
	if err := envelope.CheckAttachmentName(name); err != nil {
		return envelope.Attachment{}, apiError(http.StatusBadRequest, CodeBadRequest, "file %q: %v", name, err)
	}
	if slices.ContainsFunc(have, func(a envelope.Attachment) bool { return a.Name == name }) {
		return envelope.Attachment{}, apiError(http.StatusBadRequest, CodeBadRequest, "two files named %q", name)
	}
	mt := part.Header.Get("Content-Type")
	if base, _, err := mime.ParseMediaType(mt); err != nil || base == "application/octet-stream" {
		mt = "" // guessed from the name
	}
	cr := &capReader{r: part, limit: s.limits.MaxAttachmentBytes, what: fmt.Sprintf("attachment %q", name)}
	a, err := s.c.PutAttachment(ctx, broker.File{Name: name, MediaType: mt, Size: -1, Reader: cr})
	if err != nil && cr.err != nil {
		return a, readError(fmt.Sprintf("file %q", name), cr.err)
	}
	return a, err
}

// readError reports a request body that could not be read: too large, or
// broken off.
func readError(what string, err error) error {
	var mbe *http.MaxBytesError
	var tle *TooLargeError
	if errors.As(err, &mbe) || errors.As(err, &tle) {
		return err
	}
	return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: fmt.Sprintf("read %s: %v", what, err), Err: err}
}

// decodeJSON decodes one JSON value strictly: unknown fields, wrong types
// and trailing data are errors that name what is wrong.
func decodeJSON(r io.Reader, limit int64, what string, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return readError(what, err)
	}
	if int64(len(data)) > limit {
		return &TooLargeError{What: what, Limit: limit}
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
		if ds, err := s.c.Status(ctx, id); err == nil && len(ds.Recipients) >= copies {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// access is what an agency may see of an envelope.
type access struct {
	status *broker.DocumentStatus
	role   string           // "sender" or "recipient"
	own    *broker.Tracking // the agency's own pair, as a recipient
	seq    uint64           // a copy to read the envelope from
}

// access checks that agency sent or received envelope id. Others get
// not_found, as if it did not exist: its existence is not theirs to know.
func (s *Server) access(ctx context.Context, agency, id string) (*access, error) {
	if !envelope.IsID(id) {
		return nil, apiError(http.StatusBadRequest, CodeBadRequest, "%q is not an envelope id (a UUID in canonical form)", id)
	}
	ds, err := s.c.Status(ctx, id)
	if err != nil {
		return nil, err
	}
	a := &access{status: ds}
	for i := range ds.Recipients {
		t := &ds.Recipients[i]
		if a.seq == 0 && t.Seq > 0 {
			a.seq = t.Seq
		}
		if t.Recipient == agency {
			a.own, a.role = t, "recipient"
			if t.Seq > 0 {
				a.seq = t.Seq
			}
		}
	}
	if ds.Sender == agency {
		a.role = "sender"
	}
	if a.role == "" {
		return nil, apiError(http.StatusNotFound, CodeNotFound, "no envelope %s sent or received by %s", id, agency)
	}
	if a.role == "recipient" {
		// A recipient sees its own pair, not the others'.
		ds.Recipients = []broker.Tracking{*a.own}
	}
	return a, nil
}

func (s *Server) getEnvelope(w http.ResponseWriter, r *http.Request, agency string) {
	id := r.PathValue("id")
	a, err := s.access(r.Context(), agency, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if a.seq == 0 {
		writeError(w, apiError(http.StatusNotFound, CodeNotFound, "envelope %s: the record holds statuses but no copy", id))
		return
	}
	se, err := s.readEnvelope(r.Context(), a.seq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
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
// SHA-256 on the way. A mismatch found at the end aborts the connection,
// so the client never sees a clean end of tampered content.
func (s *Server) getAttachment(w http.ResponseWriter, r *http.Request, agency string) {
	ctx := r.Context()
	id, name := r.PathValue("id"), r.PathValue("name")
	a, err := s.access(ctx, agency, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	se, err := s.readEnvelope(ctx, a.seq)
	if err != nil {
		s.fail(w, r, err)
		return
	}
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
	if _, err := io.Copy(w, rc); err != nil {
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
	return fmt.Sprintf(`attachment; filename="%s"; filename*=UTF-8''%s`, ascii, url.PathEscape(name))
}

// listDocuments lists the documents an agency sent or received, for the
// clerks' page: filtered by text, date and box, newest first.
func (s *Server) listDocuments(w http.ResponseWriter, r *http.Request, agency string) {
	ctx := r.Context()
	q := r.URL.Query()
	box := q.Get("box")
	if box == "" {
		box = "all"
	}
	if box != "sent" && box != "received" && box != "all" {
		writeError(w, apiError(http.StatusBadRequest, CodeBadRequest, "box=%q: want sent, received or all", box))
		return
	}
	from, err := dateParam(q.Get("from"), "from", false)
	if err == nil {
		var until time.Time
		until, err = dateParam(q.Get("to"), "to", true)
		if err == nil {
			err = s.writeDocuments(ctx, w, agency, box, strings.TrimSpace(q.Get("q")), from, until, q.Get("overdue") == "true", q.Get("limit"))
		}
	}
	if err != nil {
		s.fail(w, r, err)
	}
}

func (s *Server) writeDocuments(ctx context.Context, w http.ResponseWriter, agency, box, text string, from, until time.Time, overdueOnly bool, limitParam string) error {
	limit, err := intParam(limitParam, "limit", 200, 1000)
	if err != nil {
		return err
	}
	var tracks []*broker.Tracking
	if box != "received" {
		sent, err := s.c.Sent(ctx, agency)
		if err != nil {
			return err
		}
		tracks = append(tracks, sent...)
	}
	if box != "sent" {
		got, err := s.c.Received(ctx, agency)
		if err != nil {
			return err
		}
		tracks = append(tracks, got...)
	}
	docs := map[string]*documentView{}
	var order []*documentView
	for _, t := range tracks {
		d, ok := docs[t.Envelope]
		if !ok {
			role := "recipient"
			if t.Sender == agency {
				role = "sender"
			}
			d = &documentView{ID: t.Envelope, Kind: t.Kind, Subject: t.Subject, Sender: t.Sender, Created: t.Created,
				DueDate: t.DueDate, Role: role, Attachments: []attachmentView{}, Recipients: []recipientView{}}
			if t.Seq > 0 {
				if se, err := s.readEnvelope(ctx, t.Seq); err == nil && se.Envelope != nil {
					d.Document, d.Verified = se.Envelope.Document, se.Verified()
					if se.Err != nil {
						d.VerificationError = se.Err.Error()
					}
					for _, a := range se.Envelope.Attachments {
						d.Attachments = append(d.Attachments, attachmentView{Attachment: a, URL: attachmentURL(t.Envelope, a.Name)})
					}
				}
			}
			docs[t.Envelope] = d
			order = append(order, d)
		}
		d.Recipients = append(d.Recipients, recipientView{Agency: t.Recipient, State: t.State, Code: t.Code, Updated: t.Updated, Overdue: t.Overdue, Reason: t.Reason})
		d.Overdue = d.Overdue || t.Overdue
	}
	names := s.agencyNames(ctx)
	out := make([]*documentView, 0, len(order))
	for _, d := range order {
		if d.Subject == "" && d.Created.IsZero() {
			continue // a status arrived before the copy was tracked
		}
		if (!from.IsZero() && d.Created.Before(from)) || (!until.IsZero() && !d.Created.Before(until)) || (overdueOnly && !d.Overdue) {
			continue
		}
		if text != "" && !strings.Contains(searchText(d, names), fold(text)) {
			continue
		}
		sort.Slice(d.Recipients, func(i, j int) bool { return d.Recipients[i].Agency < d.Recipients[j].Agency })
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	total := len(out)
	if len(out) > limit {
		out = out[:limit]
	}
	writeJSON(w, http.StatusOK, map[string]any{"documents": out, "total": total})
	return nil
}

// searchText is what a search matches: subject, number and notation (số,
// ký hiệu), id, and the agencies by code and name.
func searchText(d *documentView, names map[string]string) string {
	var b strings.Builder
	b.WriteString(d.Subject + "\n" + d.ID + "\n" + d.Sender + "\n" + names[d.Sender] + "\n")
	if doc := d.Document; doc != nil {
		b.WriteString(doc.CodeNumber + "/" + doc.CodeNotation + "\n" + doc.CodeNotation + "\n" + doc.TypeName + "\n")
	}
	for _, r := range d.Recipients {
		b.WriteString(r.Agency + "\n" + names[r.Agency] + "\n")
	}
	return fold(b.String())
}

func (s *Server) agencyNames(ctx context.Context) map[string]string {
	list, _ := s.c.Agencies(ctx)
	names := make(map[string]string, len(list))
	for _, a := range list {
		names[a.Code] = a.Name
	}
	return names
}

// vnZone: dates a clerk types are calendar days in Vietnam.
var vnZone = time.FixedZone("ICT", 7*3600)

func dateParam(v, name string, endOfDay bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation("2006-01-02", v, vnZone)
	if err != nil {
		return time.Time{}, apiError(http.StatusBadRequest, CodeBadRequest, "%s=%q: want a date YYYY-MM-DD", name, v)
	}
	if endOfDay {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

func intParam(v, name string, def, maxV int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxV {
		return 0, apiError(http.StatusBadRequest, CodeBadRequest, "%s=%q: want a number from 1 to %d", name, v, maxV)
	}
	return n, nil
}

func (s *Server) getMe(w http.ResponseWriter, r *http.Request, agency string) {
	v := agencyView{Code: agency}
	if a, err := s.c.LookupAgency(r.Context(), agency); err == nil {
		v.Name = a.Name
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) getAgencies(w http.ResponseWriter, r *http.Request, _ string) {
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
