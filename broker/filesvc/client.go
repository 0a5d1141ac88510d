package filesvc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
)

// Option configures a Store made by NewStore.
type Option func(*options)

type options struct {
	timeout time.Duration
	window  int
}

// Client defaults.
const (
	DefaultTimeout = 30 * time.Second
	// DefaultClientWindow chunks of 256 KiB in flight: 1 MiB per transfer.
	DefaultClientWindow = 4
)

// WithTimeout sets how long the client waits for the service before it
// gives up with storage.ErrUnavailable: for an answer to a request, an
// acknowledgement or the next chunk. Default 30 s.
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// WithWindow sets how many chunks of 256 KiB a transfer keeps in flight
// (the service may grant fewer): memory per transfer against throughput
// on long round trips. Default 4.
func WithWindow(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.window = min(n, maxWindow)
		}
	}
}

// client is the Store of one agency through the service.
type client struct {
	nc     *nats.Conn
	agency string
	token  string
	opts   options
	err    error // set when the store cannot work at all
}

// NewStore returns the storage.Store agency uses through the attachment
// service on nc. It publishes only on axis.svc.files.<token>.> and
// receives only on nc's inboxes (nc.NewInbox, under nats.CustomInboxPrefix
// when set), which is all an agency's NATS permissions allow. Delete and
// List fail with ErrForbidden. An invalid agency code makes every call
// fail with an error wrapping envelope.ErrInvalidCode.
func NewStore(nc *nats.Conn, agency string, opts ...Option) storage.Store {
	c := &client{nc: nc, agency: agency, token: envelope.Token(agency),
		opts: options{timeout: DefaultTimeout, window: DefaultClientWindow}}
	for _, o := range opts {
		o(&c.opts)
	}
	if err := envelope.CheckNonStandardCode(strings.TrimPrefix(agency, "=")); err != nil {
		c.err = fmt.Errorf("filesvc: store of agency %q: %w", agency, err)
	} else if nc == nil {
		c.err = errors.New("filesvc: store of agency " + agency + ": no NATS connection")
	}
	return c
}

func (c *client) subject(op string) string { return subjectPrefix + c.token + "." + op }

// Put streams r to the service in chunks, at most the window of them
// unacknowledged, and checks that the service stored what was sent.
func (c *client) Put(ctx context.Context, r io.Reader, opts storage.PutOptions) (storage.Object, error) {
	if c.err != nil {
		return storage.Object{}, c.err
	}
	if err := checkMediaType(opts.MediaType); err != nil {
		return storage.Object{}, fmt.Errorf("filesvc: put: %w", err)
	}
	size := max(opts.Size, -1)
	x, m, err := c.open(ctx, opPut, "put", hdrSize, strconv.FormatInt(size, 10),
		hdrMediaType, opts.MediaType, hdrWindow, strconv.Itoa(c.opts.window))
	if err != nil {
		return storage.Object{}, err
	}
	defer x.close()
	if k := m.Header.Get(hdrMsg); k != kindReady {
		return storage.Object{}, x.protocol("answer is %q, want %q", k, kindReady)
	}
	if err := x.start(m); err != nil {
		return storage.Object{}, err
	}
	maxSize, _ := strconv.ParseInt(m.Header.Get(hdrMaxSize), 10, 64)

	h := sha256.New()
	buf := make([]byte, chunkSize)
	var sent, acked, n int64
	// settle takes the acknowledgements that came, waiting for one while
	// the window is full; anything else the service sends ends the upload.
	settle := func() error {
		for {
			var m *nats.Msg
			if sent-acked >= int64(x.window) {
				var err error
				if m, err = x.next(ctx); err != nil {
					return err
				}
			} else {
				select {
				case m = <-x.ch:
					if err := x.check(m); err != nil {
						return err
					}
				default:
					return nil
				}
			}
			if k := m.Header.Get(hdrMsg); k != kindAck {
				return x.protocol("%q during the upload, want %q", k, kindAck)
			}
			seq, err := strconv.ParseInt(m.Header.Get(hdrSeq), 10, 64)
			if err != nil || seq > sent {
				return x.protocol("ack of chunk %q, %d sent", m.Header.Get(hdrSeq), sent)
			}
			acked = max(acked, seq)
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return storage.Object{}, x.abort(x.ctxErr(ctx))
		}
		k, rerr := fill(r, buf)
		if rerr != nil && rerr != io.EOF {
			return storage.Object{}, x.abort(fmt.Errorf("filesvc: put: read after %d bytes: %w", n+int64(k), rerr))
		}
		if k > 0 {
			h.Write(buf[:k])
			n += int64(k)
			if opts.Progress != nil {
				opts.Progress(n)
			}
			if maxSize > 0 && n > maxSize {
				return storage.Object{}, x.abort(fmt.Errorf("filesvc: put: %w: more than %d bytes, the most the attachment service takes", ErrTooLarge, maxSize))
			}
			if err := settle(); err != nil {
				return storage.Object{}, x.abort(err)
			}
			sent++
			if err := x.send(kindChunk, buf[:k], hdrSeq, strconv.FormatInt(sent, 10)); err != nil {
				return storage.Object{}, x.abort(err)
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	if err := x.send(kindEOF, nil, hdrSeq, strconv.FormatInt(sent+1, 10), hdrSize, strconv.FormatInt(n, 10)); err != nil {
		return storage.Object{}, x.abort(err)
	}
	for {
		m, err := x.next(ctx)
		if err != nil {
			return storage.Object{}, x.abort(err)
		}
		switch k := m.Header.Get(hdrMsg); k {
		case kindAck:
			continue
		case kindObject:
			obj, err := x.object(m)
			if err != nil {
				return storage.Object{}, err
			}
			sum := hex.EncodeToString(h.Sum(nil))
			if obj.SHA256 != sum || obj.Key != storage.Key(sum) {
				return storage.Object{}, fmt.Errorf("filesvc: put: %w: the service stored %s, the bytes sent hash to %s", storage.ErrDigestMismatch, obj.Key, sum)
			}
			if obj.Size != n {
				return storage.Object{}, fmt.Errorf("filesvc: put: %w: the service stored %d bytes, %d sent", storage.ErrSizeMismatch, obj.Size, n)
			}
			return obj, nil
		default:
			return storage.Object{}, x.protocol("%q after the upload, want %q", k, kindObject)
		}
	}
}

// Get opens a download. The reader streams it and stops with ctx; the
// caller checks the bytes (storage.VerifyingReader).
func (c *client) Get(ctx context.Context, key string) (io.ReadCloser, storage.Object, error) {
	if c.err != nil {
		return nil, storage.Object{}, c.err
	}
	if _, err := storage.CheckKey(key); err != nil {
		return nil, storage.Object{}, fmt.Errorf("filesvc: get: %w", err)
	}
	x, m, err := c.open(ctx, opGet, "get "+key, hdrKey, key, hdrWindow, strconv.Itoa(c.opts.window))
	if err != nil {
		return nil, storage.Object{}, err
	}
	if k := m.Header.Get(hdrMsg); k != kindObject {
		return nil, storage.Object{}, x.abort(x.protocol("answer is %q, want %q", k, kindObject))
	}
	obj, err := x.object(m)
	if err == nil && obj.Key != key {
		err = x.protocol("answer describes %s", obj.Key)
	}
	if err == nil {
		err = x.start(m)
	}
	if err != nil {
		return nil, storage.Object{}, x.abort(err)
	}
	return &reader{x: x, ctx: ctx, key: key, size: obj.Size}, obj, nil
}

// Stat is a plain request and answer.
func (c *client) Stat(ctx context.Context, key string) (storage.Object, error) {
	if c.err != nil {
		return storage.Object{}, c.err
	}
	if _, err := storage.CheckKey(key); err != nil {
		return storage.Object{}, fmt.Errorf("filesvc: stat: %w", err)
	}
	x := &xfer{c: c, what: "stat " + key}
	rctx, cancel := context.WithTimeout(ctx, c.opts.timeout)
	defer cancel()
	// The request uses the connection's response inbox, under its inbox
	// prefix.
	m, err := c.nc.RequestMsgWithContext(rctx, newMsg(c.subject(opStat), "", kindRequest, nil,
		hdrVersion, protocolVersion, hdrKey, key))
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return storage.Object{}, x.ctxErr(ctx)
	case errors.Is(err, nats.ErrNoResponders):
		return storage.Object{}, x.noService()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return storage.Object{}, x.timedOut()
	default:
		return storage.Object{}, fmt.Errorf("filesvc: %s: %w: %v", x.what, storage.ErrUnavailable, err)
	}
	if err := x.check(m); err != nil {
		return storage.Object{}, err
	}
	if k := m.Header.Get(hdrMsg); k != kindObject {
		return storage.Object{}, x.protocol("answer is %q, want %q", k, kindObject)
	}
	obj, err := x.object(m)
	if err == nil && obj.Key != key {
		err = x.protocol("answer describes %s", obj.Key)
	}
	return obj, err
}

// Delete is not offered to agencies.
func (c *client) Delete(ctx context.Context, key string) error {
	return fmt.Errorf("filesvc: delete %s: %w: agencies cannot delete attachments; the bus keeps them for its retention period", key, ErrForbidden)
}

// List is not offered to agencies.
func (c *client) List(ctx context.Context, fn func(storage.Object) error) error {
	return fmt.Errorf("filesvc: list: %w: agencies cannot list the attachment store", ErrForbidden)
}

// xfer is the client's side of one transfer: an inbox subscription with a
// channel sized so that what the window lets the service send always fits.
type xfer struct {
	c       *client
	what    string // "put", "get sha256/…": names the transfer in errors
	inbox   string
	ch      chan *nats.Msg
	sub     *nats.Subscription
	subject string // the transfer subject, once the service named it
	window  int
	done    chan struct{}
	once    sync.Once
}

// open subscribes an inbox, sends the request and waits for the first
// answer, which is not an error.
func (c *client) open(ctx context.Context, op, what string, kv ...string) (*xfer, *nats.Msg, error) {
	x := &xfer{c: c, what: what, inbox: c.nc.NewInbox(), window: c.opts.window, done: make(chan struct{}),
		ch: make(chan *nats.Msg, c.opts.window+8)}
	var err error
	if x.sub, err = c.nc.ChanSubscribe(x.inbox, x.ch); err != nil {
		return nil, nil, fmt.Errorf("filesvc: %s: %w: subscribe to inbox: %v", what, storage.ErrUnavailable, err)
	}
	// Subscribing and publishing on one connection keep their order, so
	// the server knows the inbox before the service can answer.
	req := newMsg(c.subject(op), x.inbox, kindRequest, nil, append([]string{hdrVersion, protocolVersion}, kv...)...)
	if err := c.nc.PublishMsg(req); err != nil {
		x.close()
		return nil, nil, fmt.Errorf("filesvc: %s: %w: %v", what, storage.ErrUnavailable, err)
	}
	m, err := x.next(ctx)
	if err != nil {
		x.close()
		return nil, nil, err
	}
	return x, m, nil
}

// start takes the transfer subject and window from the service's first
// answer. The subject must be under the agency's own prefix: the client
// publishes nowhere else.
func (x *xfer) start(m *nats.Msg) error {
	subj := m.Header.Get(hdrTransfer)
	if !strings.HasPrefix(subj, subjectPrefix+x.c.token+"."+transferToken+".") || checkReply(subj) != nil {
		return x.protocol("transfer subject %q is not under %s%s.%s.", subj, subjectPrefix, x.c.token, transferToken)
	}
	w, err := strconv.Atoi(m.Header.Get(hdrWindow))
	if err != nil || w < 1 || w > x.window {
		return x.protocol("window %q granted, want 1 to %d", m.Header.Get(hdrWindow), x.window)
	}
	x.subject, x.window = subj, w
	return nil
}

// next waits for the service's next message, giving up after the
// timeout; an error message comes back as the error it names.
func (x *xfer) next(ctx context.Context) (*nats.Msg, error) {
	select {
	case m := <-x.ch:
		return m, x.check(m)
	default:
	}
	timer := time.NewTimer(x.c.opts.timeout)
	defer timer.Stop()
	select {
	case m := <-x.ch:
		return m, x.check(m)
	case <-ctx.Done():
		return nil, x.ctxErr(ctx)
	case <-x.done:
		return nil, fmt.Errorf("filesvc: %s: reader closed", x.what)
	case <-timer.C:
		return nil, x.timedOut()
	}
}

// check turns a no-responders status or an error message into an error.
func (x *xfer) check(m *nats.Msg) error {
	if m.Header.Get(hdrStatus) == noResponders && len(m.Data) == 0 {
		return x.noService()
	}
	if m.Header.Get(hdrMsg) != kindError {
		return nil
	}
	code, text := m.Header.Get(hdrError), string(m.Data)
	if s, ok := sentinels[code]; ok {
		return &remoteError{code: code, err: fmt.Errorf("filesvc: %s: %w: %s", x.what, s, text)}
	}
	return &remoteError{code: code, err: fmt.Errorf("filesvc: %s: attachment service failed (%s): %s", x.what, code, text)}
}

// remoteError is an error the service answered: the transfer is over on
// its side, so the client sends no cancel.
type remoteError struct {
	code string
	err  error
}

func (e *remoteError) Error() string { return e.err.Error() }
func (e *remoteError) Unwrap() error { return e.err }

func (x *xfer) noService() error {
	return fmt.Errorf("filesvc: %s: %w: no attachment service answers on %s", x.what, storage.ErrUnavailable, x.c.subject("*"))
}

func (x *xfer) timedOut() error {
	return fmt.Errorf("filesvc: %s: %w: the attachment service did not answer within %s", x.what, storage.ErrUnavailable, x.c.opts.timeout)
}

// ctxErr wraps the caller's context error; a deadline also counts as the
// store being unavailable, as with the other stores.
func (x *xfer) ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("filesvc: %s: %w: %w", x.what, storage.ErrUnavailable, ctx.Err())
	}
	return fmt.Errorf("filesvc: %s: %w", x.what, ctx.Err())
}

func (x *xfer) protocol(format string, args ...any) error {
	return fmt.Errorf("filesvc: %s: %w: %s", x.what, ErrProtocol, fmt.Sprintf(format, args...))
}

func (x *xfer) object(m *nats.Msg) (storage.Object, error) {
	var obj storage.Object
	if err := json.Unmarshal(m.Data, &obj); err != nil {
		return storage.Object{}, x.protocol("object: %v", err)
	}
	return obj, nil
}

// send publishes a message of the transfer. Chunks and eof carry the
// inbox as reply, where the service answers if it lost the transfer (and
// NATS reports no responders if the service is gone).
func (x *xfer) send(kind string, data []byte, kv ...string) error {
	reply := ""
	if kind == kindChunk || kind == kindEOF {
		reply = x.inbox
	}
	if err := x.c.nc.PublishMsg(newMsg(x.subject, reply, kind, data, kv...)); err != nil {
		return fmt.Errorf("filesvc: %s: %w: send %s: %v", x.what, storage.ErrUnavailable, kind, err)
	}
	return nil
}

// abort ends the transfer because of err and returns it; unless the
// service itself reported err, it is told to drop the transfer.
func (x *xfer) abort(err error) error {
	var re *remoteError
	if x.subject != "" && !errors.As(err, &re) {
		_ = x.c.nc.PublishMsg(newMsg(x.subject, "", kindCancel, []byte(err.Error()[:min(len(err.Error()), maxErrorText)])))
	}
	x.close()
	return err
}

func (x *xfer) close() {
	x.once.Do(func() {
		_ = x.sub.Unsubscribe()
		close(x.done)
	})
}

// reader streams a download, acknowledging each chunk as it takes it, and
// resumes it on a new transfer when a chunk does not come (resume.go).
type reader struct {
	x        *xfer
	ctx      context.Context
	key      string
	size     int64
	cur      []byte
	seq      int64 // last chunk of the current transfer
	n        int64 // bytes handed over, all transfers
	recv     int64 // bytes received in the current transfer
	err      error
	finished atomic.Bool // eof or error: nothing to cancel

	skip      int64 // bytes still to drop: a service that ignored the offset
	stalls    int   // resumes in a row without progress
	resumedAt int64 // n at the last resume
}

func (r *reader) Read(p []byte) (int, error) {
	select {
	case <-r.x.done:
		if r.err == nil {
			return 0, fmt.Errorf("filesvc: %s: read after Close", r.x.what)
		}
	default:
	}
	if r.err == nil && r.ctx.Err() != nil {
		r.cur = nil
		r.err = r.end(r.x.abort(r.x.ctxErr(r.ctx)))
	}
	for len(r.cur) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.err = r.fill()
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

// fill takes the next chunk, or returns how the download ended. A chunk
// that does not come, or comes out of order, resumes the download on a new
// transfer from the bytes handed over so far.
func (r *reader) fill() error {
	m, err := r.x.next(r.ctx)
	if err != nil {
		return r.failed(err)
	}
	k := m.Header.Get(hdrMsg)
	seq, serr := strconv.ParseInt(m.Header.Get(hdrSeq), 10, 64)
	if (k == kindChunk || k == kindEOF) && (serr != nil || seq != r.seq+1) {
		return r.failed(r.x.protocol("%s %q came after chunk %d (lost messages?)", k, m.Header.Get(hdrSeq), r.seq))
	}
	switch k {
	case kindChunk:
		if len(m.Data) == 0 || len(m.Data) > chunkSize {
			return r.end(r.x.abort(r.x.protocol("chunk %d of %d bytes", seq, len(m.Data))))
		}
		data := m.Data
		r.seq = seq
		r.recv += int64(len(data))
		if r.skip > 0 {
			drop := min(r.skip, int64(len(data)))
			data, r.skip = data[drop:], r.skip-drop
		}
		r.cur = data
		r.n += int64(len(data))
		if err := r.x.send(kindAck, nil, hdrSeq, strconv.FormatInt(seq, 10)); err != nil {
			return r.failed(err)
		}
		return nil
	case kindEOF:
		if size, err := strconv.ParseInt(m.Header.Get(hdrSize), 10, 64); err != nil || size != r.recv {
			return r.end(r.x.abort(fmt.Errorf("filesvc: %s: %w: the service says it sent %s bytes, %d arrived",
				r.x.what, storage.ErrSizeMismatch, m.Header.Get(hdrSize), r.recv)))
		}
		r.x.close()
		return r.end(io.EOF)
	default:
		return r.end(r.x.abort(r.x.protocol("%q during the download", k)))
	}
}

// failed ends the current transfer because of err and resumes on a new
// one, or ends the download with err.
func (r *reader) failed(err error) error {
	err = r.x.abort(err)
	if rerr := r.resume(err); rerr != nil {
		return r.end(rerr)
	}
	r.recv = 0
	return nil
}

func (r *reader) end(err error) error {
	r.finished.Store(true)
	return err
}

// Close stops the download; before the end it tells the service to drop
// the transfer. It may be called while a Read waits, to interrupt it.
func (r *reader) Close() error {
	if !r.finished.Load() {
		_ = r.x.abort(errors.New("reader closed"))
	}
	r.x.close()
	return nil
}
