package httpapi

import (
	"context"
	"fmt"
	"mime"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
)

// upload is what one POST put in the attachment store. The store is
// content-addressed: an object this request did not create may be
// another envelope's attachment, so a failed request removes only the
// objects it created, none that another request in flight holds, and
// none that another upload or an envelope refers to (the same bytes put
// by another agency while this request ran).
type upload struct {
	s       *Server
	agency  string // who uploads: its possession of the bytes is recorded
	start   time.Time
	held    []string // keys held against removal by other requests
	created []string // keys this request's Put created
}

func (s *Server) newUpload(agency string) *upload {
	return &upload{s: s, agency: agency, start: time.Now()}
}

// storeFile streams one file part into the store. With a signed
// envelope, the file must be one its manifest lists, with the bytes it
// lists.
func (s *Server) storeFile(ctx context.Context, up *upload, part *multipart.Part, have []envelope.Attachment, signed *envelope.Signed) (envelope.Attachment, error) {
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
	var want *envelope.Attachment
	if signed != nil {
		i := slices.IndexFunc(signed.Envelope.Attachments, func(a envelope.Attachment) bool { return a.Name == name })
		if i < 0 {
			return envelope.Attachment{}, apiError(http.StatusBadRequest, CodeBadRequest, "file %q is not in the signed envelope's manifest", name)
		}
		want = &signed.Envelope.Attachments[i]
	}
	mt := part.Header.Get("Content-Type")
	if base, _, err := mime.ParseMediaType(mt); err != nil || base == "application/octet-stream" {
		mt = mime.TypeByExtension(filepath.Ext(name)) // guessed from the name
	}
	if mt == "" {
		mt = "application/octet-stream"
	}
	cr := &capReader{r: part, limit: s.limits.MaxAttachmentBytes, what: fmt.Sprintf("attachment %q", name)}
	if want != nil && want.Size < cr.limit {
		cr.limit, cr.what = want.Size, fmt.Sprintf("attachment %q (the signed manifest says %d bytes)", name, want.Size)
	}
	obj, err := s.c.Store().Put(ctx, cr, storage.PutOptions{Size: -1, MediaType: mt})
	if err != nil {
		if cr.err != nil {
			return envelope.Attachment{}, readError(fmt.Sprintf("file %q", name), cr.err)
		}
		return envelope.Attachment{}, fmt.Errorf("store file %q: %w", name, err)
	}
	up.add(obj)
	if err := s.c.RecordUpload(ctx, obj.SHA256, up.agency); err != nil {
		return envelope.Attachment{}, fmt.Errorf("store file %q: %w", name, err)
	}
	a := envelope.Attachment{Name: name, MediaType: mt, Size: obj.Size, SHA256: obj.SHA256, Key: obj.Key}
	if want != nil && (want.SHA256 != a.SHA256 || want.Size != a.Size) {
		return a, apiError(http.StatusUnprocessableEntity, CodeInvalidEnvelope, "file %q is %d bytes with SHA-256 %s; the signed manifest says %d bytes %s",
			name, a.Size, a.SHA256, want.Size, want.SHA256)
	}
	return a, nil
}

// add records an object the request put: held at once, and marked as
// created when the store made it now rather than finding it (a Put that
// finds its bytes stored reports the older object's time).
func (u *upload) add(obj storage.Object) {
	u.s.held.hold(obj.Key)
	u.held = append(u.held, obj.Key)
	if !obj.ModTime.IsZero() && !obj.ModTime.Before(u.start) {
		u.created = append(u.created, obj.Key)
	}
}

// finish removes, unless the envelope was sent, the objects the request
// created, then lets go of what it held. It runs after the request's
// context may have ended (a client gone, a body cut), so it has its own.
func (u *upload) finish(ctx context.Context, sent bool) {
	defer func() {
		for _, k := range u.held {
			u.s.held.release(k)
		}
	}()
	if sent || len(u.created) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, k := range u.created {
		if u.s.held.count(k) > 1 {
			continue // another request in flight put the same bytes
		}
		// Stored after this request began is not stored by it: another
		// agency may have put the same bytes meanwhile, and sent them.
		sum, _ := storage.CheckKey(k)
		if shared, err := u.s.c.ReferredByOthers(ctx, sum, u.agency); err != nil || shared {
			if err != nil {
				u.s.log.Warn("keep attachment of a refused request: cannot tell whether others refer to it", "key", k, "err", err)
			}
			continue
		}
		if err := u.s.c.Store().Delete(ctx, k); err != nil {
			u.s.log.Warn("remove attachment of a refused request", "key", k, "err", err)
		}
	}
}

// heldObjects counts the requests in flight that put each object.
type heldObjects struct {
	mu sync.Mutex
	n  map[string]int
}

func newHeldObjects() *heldObjects { return &heldObjects{n: map[string]int{}} }

func (h *heldObjects) hold(k string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n[k]++
}

func (h *heldObjects) release(k string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n[k] <= 1 {
		delete(h.n, k)
		return
	}
	h.n[k]--
}

func (h *heldObjects) count(k string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[k]
}
