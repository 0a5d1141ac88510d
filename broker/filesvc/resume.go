package filesvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
)

// Resuming a download: a chunk that does not come within the client's
// timeout (a slow bus, a store that timed out reading on the service's
// side, a service process that died) does not fail the transfer. The
// reader asks again for the object from the first byte it has not
// received (Axis-File-Offset), on a new transfer, and goes on. Only a
// bus that makes no progress at all over several attempts fails it.

// maxStalls is how many resumes in a row may bring no byte before the
// download fails: a dead bus, not a slow one.
const maxStalls = 3

// skipTo positions the store's reader at offset: by seeking when the store
// can (S3), by reading past the bytes otherwise.
func skipTo(src io.Reader, rc io.Reader, offset, size int64) error {
	if offset == 0 {
		return nil
	}
	if offset > size {
		return errorf(codeBadRequest, "get: offset %d is past the end of the %d-byte object", offset, size)
	}
	if sk, ok := rc.(io.Seeker); ok {
		if _, err := sk.Seek(offset, io.SeekStart); err == nil {
			return nil
		}
	}
	if _, err := io.CopyN(io.Discard, src, offset); err != nil {
		return fmt.Errorf("skip to byte %d: %w", offset, err)
	}
	return nil
}

// resumable tells an error worth resuming after: the service or the bus
// did not answer in time or failed on its side; not a refusal, a content
// mismatch or the caller's own cancellation.
func resumable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var re *remoteError
	if errors.As(err, &re) {
		return re.code == codeUnavailable || re.code == codeInternal || re.code == codeRateLimited
	}
	return errors.Is(err, storage.ErrUnavailable) || errors.Is(err, ErrProtocol)
}

// resume replaces the reader's transfer by one from byte r.n on, after
// cause ended the current one; it returns cause when resuming is not
// worth it or did not work.
func (r *reader) resume(cause error) error {
	for {
		if !resumable(r.ctx, cause) {
			return cause
		}
		if r.n > r.resumedAt {
			r.stalls = 0
		}
		r.stalls++
		if r.stalls > maxStalls {
			return fmt.Errorf("%w (%d attempts to resume at byte %d brought nothing)", cause, maxStalls, r.n)
		}
		r.resumedAt = r.n
		// A short pause, growing with the stalls, jittered: the service may
		// still hold the agency's transfer slot of the one that failed.
		wait := time.Duration(r.stalls) * 200 * time.Millisecond
		select {
		case <-r.ctx.Done():
			return cause
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		}
		x, m, err := r.x.c.open(r.ctx, opGet, r.x.what, hdrKey, r.key, hdrWindow, strconv.Itoa(r.x.c.opts.window),
			hdrOffset, strconv.FormatInt(r.n, 10))
		if err != nil {
			cause = err
			continue
		}
		if err := r.restart(x, m); err != nil {
			cause = x.abort(err)
			continue
		}
		r.x = x
		return nil
	}
}

// restart checks the answer that opens a resumed transfer: the same object,
// from the offset asked.
func (r *reader) restart(x *xfer, m *nats.Msg) error {
	if k := m.Header.Get(hdrMsg); k != kindObject {
		return x.protocol("answer is %q, want %q", k, kindObject)
	}
	obj, err := x.object(m)
	if err != nil {
		return err
	}
	if obj.Key != r.key || obj.Size != r.size {
		return x.protocol("resumed answer describes %s of %d bytes, want %s of %d", obj.Key, obj.Size, r.key, r.size)
	}
	r.skip = r.n // a service that ignores the offset sends from byte 0
	if off, err := strconv.ParseInt(m.Header.Get(hdrOffset), 10, 64); err == nil {
		if off != r.n {
			return x.protocol("resumed at byte %d, want %d", off, r.n)
		}
		r.skip = 0
	}
	r.seq = 0
	return x.start(m)
}
