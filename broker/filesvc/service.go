package filesvc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/broker/ratelimit"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/broker/responder"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures the service. Zero values take the defaults.
type Config struct {
	// MaxSize bounds an upload, in bytes. Default 5 GiB.
	MaxSize int64
	// MaxConcurrent bounds the transfers (puts and gets) an agency runs at
	// once on one service process. Default 4; negative: no bound.
	MaxConcurrent int
	// RatePerSecond bounds the requests (put, get, stat) an agency makes
	// per second to one service process. Default 50; negative: no bound.
	RatePerSecond float64
	// RateBurst is how many requests may come at once above the rate.
	// Default twice RatePerSecond.
	RateBurst int
	// Window is the most unacknowledged chunks (of 256 KiB) the service
	// grants a transfer; the client may ask for fewer. Default 8.
	Window int
	// IdleTimeout: a transfer whose client stays silent that long is
	// abandoned; it also bounds each store call of a stat. Default 1 min.
	IdleTimeout time.Duration
	// MinRate, in bytes per second: an upload slower than that on average,
	// once it has run for IdleTimeout, is abandoned and what it staged is
	// removed. Without it, a client sending a chunk now and then, just
	// inside IdleTimeout, would keep a transfer slot and the bytes staged
	// so far for as long as it liked, up to MaxSize per transfer. Default
	// 16 KiB/s (a tenth of a slow 1 Mbit/s line); negative: no bound.
	MinRate float64
	// DrainTimeout bounds how long Stop lets transfers in flight finish
	// before it answers them "unavailable". Default 30 s.
	DrainTimeout time.Duration
	// InboxPrefix, when set, requires every reply subject to be under
	// InboxPrefix+<agency token>+".": with "_INBOX_", the prefix agencies
	// connect with (nats.CustomInboxPrefix), an agency cannot have the
	// service send to another agency's inbox. Requests breaking the rule
	// are dropped unanswered, since the only address to answer is the
	// forbidden one.
	InboxPrefix string
	// QueueGroup shared by the service processes. Default QueueGroup.
	QueueGroup string
	// SystemServes, when set, tells whether document system id (a caller
	// acting as "="+id) serves agency now: nil when it does, an error
	// wrapping failover.ErrUnavailable when the directory could not be
	// read now (broker.Served). A system may then read what any agency it
	// serves may read: mail stored before an agency came to it was granted
	// to the agency and its former system only.
	SystemServes func(ctx context.Context, id, agency string) error
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Defaults.
const (
	DefaultMaxSize       = 5 << 30
	DefaultMaxConcurrent = 4
	DefaultRatePerSecond = 50
	DefaultWindow        = 8
	DefaultIdleTimeout   = time.Minute
	DefaultMinRate       = 16 << 10
	DefaultDrainTimeout  = 30 * time.Second
	// stopGrace bounds the wait, after the drain, for aborted transfers
	// to clean up (a failed upload purges its chunks).
	stopGrace = 10 * time.Second
	// maxBuckets bounds the rate limiter's buckets: beyond it, full (idle)
	// ones are dropped, which forgets nothing.
	maxBuckets = 4096
)

func (c *Config) defaults() {
	if c.MaxSize <= 0 {
		c.MaxSize = DefaultMaxSize
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.RatePerSecond == 0 {
		c.RatePerSecond = DefaultRatePerSecond
	}
	if c.RateBurst <= 0 {
		c.RateBurst = max(1, int(2*c.RatePerSecond))
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	c.Window = min(c.Window, maxWindow)
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MinRate == 0 {
		c.MinRate = DefaultMinRate
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.QueueGroup == "" {
		c.QueueGroup = QueueGroup
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Service is a running attachment service.
type Service struct {
	nc    *nats.Conn
	store storage.Store
	refs  jetstream.KeyValue
	cfg   Config
	log   *slog.Logger
	inst  string
	// lim is a token bucket per agency token. Each service process keeps
	// its own: with n processes in the queue group an agency gets up to n
	// times the rate, which is fine for a guard against runaway clients.
	lim *ratelimit.Limiter

	// ctx is the parent of every request's; cancelled, with the cause
	// answered to the clients, when Stop gives up draining.
	ctx    context.Context
	cancel context.CancelCauseFunc

	reqSub, xferSub *responder.Responder

	mu        sync.Mutex
	stopping  bool
	transfers map[string]*transfer
	active    map[string]int // transfers per agency token
	wg        sync.WaitGroup
	stopOnce  sync.Once
}

// transfer is a put or get under way.
type transfer struct {
	id string
	// subject is where the client's messages come. It is also the reply
	// subject of what the service sends to the client: if the client's
	// inbox is gone (it gave up or died), NATS answers that publish with
	// a no-responders status on subject, and the transfer ends at once
	// rather than after Config.IdleTimeout.
	subject string
	op      string
	key     string
	token   string
	agency  string
	inbox   string
	window  int
	ctx     context.Context
	cancel  context.CancelCauseFunc
	in      chan frame    // put: chunks and eof, at most window+1
	sent    atomic.Int64  // get: last chunk sent
	acked   atomic.Int64  // get: last chunk acknowledged
	ackc    chan struct{} // get: signalled on each ack
}

// errClientCancelled and errClientGone end a transfer the client
// cancelled or left: nobody waits for an answer.
var (
	errClientCancelled = errors.New("cancelled by the client")
	errClientGone      = errors.New("the client's inbox has no subscriber any more")
)

// Serve starts the service on nc: it answers agencies' requests with store
// and checks their access in refs (the AXIS_FILEREFS bucket). ctx bounds
// the set-up only; the service runs until Stop.
func Serve(ctx context.Context, nc *nats.Conn, store storage.Store, refs jetstream.KeyValue, cfg Config) (*Service, error) {
	if nc == nil || store == nil || refs == nil {
		return nil, errors.New("start attachment service: connection, store and refs bucket are all required")
	}
	cfg.defaults()
	if _, err := refs.Status(ctx); err != nil {
		return nil, fmt.Errorf("start attachment service: refs bucket: %w: %v", storage.ErrUnavailable, err)
	}
	s := &Service{
		nc: nc, store: store, refs: refs, cfg: cfg, log: cfg.Logger,
		inst:      randomID(8),
		lim:       &ratelimit.Limiter{MaxKeys: maxBuckets},
		transfers: map[string]*transfer{},
		active:    map[string]int{},
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	var err error
	// Transfer messages come to this process only; the handler never
	// blocks (it hands chunks to bounded channels), so the subscription's
	// backlog stays short, and a generous limit avoids dropping chunks in
	// a burst of many transfers.
	s.xferSub, err = responder.Listen(ctx, nc, responder.Config{
		Subject: subjectPrefix + "*." + transferToken + "." + s.inst + ".*", Handler: s.onFrame,
		PendingBytes: 256 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("start attachment service: transfers: %w: %v", storage.ErrUnavailable, err)
	}
	s.reqSub, err = responder.Listen(ctx, nc, responder.Config{
		Subject: subjectPrefix + "*.*", Queue: cfg.QueueGroup, Handler: s.onRequest,
	})
	if err != nil {
		s.xferSub.Stop()
		return nil, fmt.Errorf("start attachment service: requests: %w: %v", storage.ErrUnavailable, err)
	}
	s.log.Info("attachment service started", "instance", s.inst, "max_size", cfg.MaxSize,
		"max_concurrent", cfg.MaxConcurrent, "rate", cfg.RatePerSecond)
	return s, nil
}

// Stop stops taking requests, lets the transfers in flight finish for up
// to Config.DrainTimeout, then answers the rest "unavailable" and waits
// briefly for them to clean up. Safe to call twice.
func (s *Service) Stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		// Drain: requests already delivered are answered "unavailable".
		s.reqSub.Drain()
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		drain := s.cfg.DrainTimeout
		if s.nc.IsClosed() {
			// Nothing can reach the clients any more: no point waiting.
			drain = 0
		}
		select {
		case <-done:
		case <-time.After(drain):
			s.mu.Lock()
			n := len(s.transfers)
			s.mu.Unlock()
			s.log.Warn("attachment service stopping: abandoning transfers still in flight", "transfers", n, "drain_timeout", drain)
			s.cancel(errorf(codeUnavailable, "attachment service stopped (transfer not finished within %s)", drain))
			select {
			case <-done:
			case <-time.After(stopGrace):
				s.log.Warn("attachment service stopped with transfers still cleaning up")
			}
		}
		s.cancel(errorf(codeUnavailable, "attachment service stopped"))
		s.xferSub.Stop()
		// The last answers should leave before the caller closes nc.
		_ = s.nc.FlushTimeout(time.Second)
		s.log.Info("attachment service stopped", "instance", s.inst)
	})
}

// onRequest takes a request; it only checks and counts, the work runs in
// a goroutine of its own.
func (s *Service) onRequest(m *nats.Msg) {
	if !s.replyAllowed(m.Subject, m.Reply) {
		s.log.Debug("attachment request dropped: reply subject outside the agency's inbox", "subject", m.Subject, "reply", m.Reply)
		return
	}
	req, err := decodeRequest(m.Subject, m.Reply, m.Header)
	if err != nil {
		s.log.Debug("bad attachment request", "subject", m.Subject, "err", err)
		s.answer(m.Reply, err)
		return
	}
	if wait, ok := s.lim.Take(req.token, ratelimit.Rate{PerSecond: s.cfg.RatePerSecond, Burst: float64(s.cfg.RateBurst)}, time.Now()); !ok {
		s.answer(req.reply, errorf(codeRateLimited, "%s: agency %s made more than %g requests per second (burst %d) to the attachment service; retry in %s",
			req.op, req.agency, s.cfg.RatePerSecond, s.cfg.RateBurst, wait.Round(time.Millisecond)))
		return
	}
	if req.op == opPut && req.size > s.cfg.MaxSize {
		s.answer(req.reply, errorf(codeTooLarge, "put: %d bytes announced, the attachment service takes at most %d", req.size, s.cfg.MaxSize))
		return
	}
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		s.answer(req.reply, errorf(codeUnavailable, "%s: attachment service is stopping", req.op))
		return
	}
	if req.op != opStat {
		if n := s.active[req.token]; s.cfg.MaxConcurrent > 0 && n >= s.cfg.MaxConcurrent {
			s.mu.Unlock()
			s.answer(req.reply, errorf(codeRateLimited, "%s: agency %s has reached its limit of %d transfer(s) at once; retry when one ends",
				req.op, req.agency, n))
			return
		}
		s.active[req.token]++
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		switch req.op {
		case opStat:
			s.stat(req)
		case opPut:
			defer s.release(req.token)
			s.put(req)
		case opGet:
			defer s.release(req.token)
			s.get(req)
		}
	}()
}

// replyAllowed applies Config.InboxPrefix.
func (s *Service) replyAllowed(subject, reply string) bool {
	if s.cfg.InboxPrefix == "" {
		return true
	}
	rest, _ := strings.CutPrefix(subject, subjectPrefix)
	token, _, _ := strings.Cut(rest, ".")
	return token != "" && strings.HasPrefix(reply, s.cfg.InboxPrefix+token+".")
}

func (s *Service) release(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[token]--; s.active[token] <= 0 {
		delete(s.active, token)
	}
}

// answer sends err to reply, if there is one to send to.
func (s *Service) answer(reply string, err error) {
	if checkReply(reply) != nil {
		return
	}
	if e := s.nc.PublishMsg(errorMsg(reply, err)); e != nil {
		s.log.Debug("attachment service: answer lost", "reply", reply, "err", e)
	}
}

// answerObject sends obj to reply; via, when set, is the transfer subject
// (see transfer.subject).
func (s *Service) answerObject(reply, via string, obj storage.Object, kv ...string) error {
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	return s.nc.PublishMsg(newMsg(reply, via, kindObject, data, kv...))
}

// checkAccess: get and stat need the agency's ref to the attachment. The
// store is not asked before, so a forbidden caller learns nothing about
// the object.
func (s *Service) checkAccess(ctx context.Context, req request) error {
	_, err := s.refs.Get(ctx, record.FileRefKey(req.sha, envelope.CodeFromToken(req.token)))
	if (errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted)) && strings.HasPrefix(req.agency, "=") && s.cfg.SystemServes != nil {
		if ok, lerr := s.servedHolder(ctx, strings.TrimPrefix(req.agency, "="), req.sha); lerr != nil {
			err = lerr
		} else if ok {
			err = nil
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return errorf(codeForbidden, "%s %s: agency %s neither sent nor received an envelope listing this attachment",
			req.op, req.key, req.agency)
	default:
		return errorf(codeUnavailable, "%s %s: cannot check the access of agency %s: %v", req.op, req.key, req.agency, err)
	}
}

// servedHolder reports whether an agency that system serves now holds a
// ref to the attachment sha (it sent, received or uploaded it): the few
// holders of one attachment are listed, not the system's agencies. A
// holder the directory could not be read for is no refusal: without
// another holder served, the answer is that error.
func (s *Service) servedHolder(ctx context.Context, system, sha string) (bool, error) {
	keys, err := s.refs.ListKeysFiltered(ctx, sha+".>")
	if err != nil {
		return false, err
	}
	defer keys.Stop()
	found := false
	var unread error
	for k := range keys.Keys() {
		token, _, _ := strings.Cut(strings.TrimPrefix(k, sha+"."), ".")
		code := envelope.CodeFromToken(token)
		if found || strings.HasPrefix(code, "=") || envelope.CheckNonStandardCode(code) != nil {
			continue // drain the lister
		}
		err := s.cfg.SystemServes(ctx, system, code)
		found = err == nil
		if errors.Is(err, failover.ErrUnavailable) {
			unread = err
		}
	}
	if !found && unread != nil {
		return false, unread
	}
	return found, nil
}

func (s *Service) stat(req request) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.IdleTimeout)
	defer cancel()
	if err := s.checkAccess(ctx, req); err != nil {
		s.answer(req.reply, err)
		return
	}
	obj, err := s.store.Stat(ctx, req.key)
	if err != nil {
		s.answer(req.reply, s.failure(ctx, req, err))
		return
	}
	if err := s.answerObject(req.reply, "", obj); err != nil {
		s.log.Debug("attachment service: answer lost", "op", req.op, "key", req.key, "err", err)
	}
}

func (s *Service) newTransfer(req request) *transfer {
	w := s.cfg.Window
	if req.window > 0 {
		w = min(w, req.window)
	}
	t := &transfer{id: randomID(12), op: req.op, key: req.key, token: req.token, agency: req.agency, inbox: req.reply, window: w,
		in: make(chan frame, w+1), ackc: make(chan struct{}, 1)}
	t.subject = transferSubject(req.token, s.inst, t.id)
	t.ctx, t.cancel = context.WithCancelCause(s.ctx)
	s.mu.Lock()
	s.transfers[t.id] = t
	s.mu.Unlock()
	return t
}

func (s *Service) endTransfer(t *transfer) {
	s.mu.Lock()
	delete(s.transfers, t.id)
	s.mu.Unlock()
	t.cancel(errors.New("transfer ended"))
}

func (s *Service) put(req request) {
	t := s.newTransfer(req)
	defer s.endTransfer(t)
	ready := newMsg(req.reply, t.subject, kindReady, nil, hdrTransfer, t.subject,
		hdrWindow, strconv.Itoa(t.window), hdrMaxSize, strconv.FormatInt(s.cfg.MaxSize, 10))
	if err := s.nc.PublishMsg(ready); err != nil {
		return
	}
	pr := &putReader{s: s, t: t}
	obj, err := s.store.Put(t.ctx, pr, storage.PutOptions{Size: req.size, MediaType: req.mediaType})
	if err != nil {
		if err := s.failure(t.ctx, req, err); err != nil {
			s.answer(req.reply, err)
		}
		return
	}
	// The upload proves the agency holds these bytes: without it, an
	// envelope of its own listing them gives its recipients no access.
	if _, err := s.refs.Put(t.ctx, record.UploadRefKey(obj.SHA256, envelope.CodeFromToken(req.token)), []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		s.answer(req.reply, errorf(codeUnavailable, "put %s: cannot record the upload of agency %s: %v", obj.Key, req.agency, err))
		return
	}
	// The stored time would tell whether someone stored these bytes
	// before: answer the time of this upload.
	obj.ModTime = time.Now().UTC()
	if err := s.answerObject(req.reply, "", obj); err != nil {
		s.log.Debug("attachment service: answer lost", "op", req.op, "key", obj.Key, "err", err)
	}
	s.log.Debug("attachment stored", "agency", req.agency, "key", obj.Key, "size", obj.Size)
}

func (s *Service) get(req request) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.IdleTimeout)
	err := s.checkAccess(ctx, req)
	cancel()
	if err != nil {
		s.answer(req.reply, err)
		return
	}
	t := s.newTransfer(req)
	defer s.endTransfer(t)
	// The store's reader gets a context cancelled only once the transfer
	// is over: the embedded store's reader, cancelled while blocked, stays
	// blocked until its read deadline (seconds), holding the agency's
	// transfer slot. The transfer's own cancellation is checked between
	// reads instead.
	sctx, scancel := context.WithCancel(context.WithoutCancel(t.ctx))
	defer scancel()
	rc, obj, err := s.store.Get(sctx, req.key)
	if err != nil {
		s.answer(req.reply, s.failure(t.ctx, req, err))
		return
	}
	defer rc.Close()
	src := ctxReader{ctx: t.ctx, r: rc}
	if err := skipTo(src, rc, req.offset, obj.Size); err != nil {
		s.answer(req.reply, s.failure(t.ctx, req, err))
		return
	}
	if err := s.answerObject(req.reply, t.subject, obj, hdrTransfer, t.subject, hdrWindow, strconv.Itoa(t.window),
		hdrOffset, strconv.FormatInt(req.offset, 10)); err != nil {
		return
	}
	buf := make([]byte, chunkSize)
	var seq, n int64
	for {
		k, rerr := fill(src, buf)
		if rerr != nil && rerr != io.EOF {
			if err := s.failure(t.ctx, req, rerr); err != nil {
				s.answer(req.reply, err)
			}
			return
		}
		if k > 0 {
			if err := t.waitWindow(seq+1, s.cfg.IdleTimeout); err != nil {
				if err := s.failure(t.ctx, req, err); err != nil {
					s.answer(req.reply, err)
				}
				return
			}
			seq++
			t.sent.Store(seq)
			// PublishMsg copies the data out, so buf is free again.
			if err := s.nc.PublishMsg(newMsg(req.reply, t.subject, kindChunk, buf[:k], hdrSeq, strconv.FormatInt(seq, 10))); err != nil {
				return
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			eof := newMsg(req.reply, "", kindEOF, nil, hdrSeq, strconv.FormatInt(seq+1, 10), hdrSize, strconv.FormatInt(n, 10))
			_ = s.nc.PublishMsg(eof)
			return
		}
	}
}

// failure turns what ended a request into the answer, or nil when the
// client cancelled and expects none. The cause of a cancelled context
// (stop, idle client, protocol breach) wins over what the store made of
// the cancellation.
func (s *Service) failure(ctx context.Context, req request, err error) error {
	if ctx.Err() != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
	}
	if errors.Is(err, errClientCancelled) || errors.Is(err, errClientGone) {
		return nil
	}
	var we *wireError
	if errors.As(err, &we) {
		return we
	}
	what := req.op + " " + req.key
	if req.op == opPut {
		what = "put"
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errorf(codeNotFound, "%s: no such attachment in the store", what)
	case errors.Is(err, storage.ErrInvalidKey):
		return errorf(codeInvalidKey, "%s: %v", what, err)
	case errors.Is(err, storage.ErrDigestMismatch):
		return errorf(codeDigestMismatch, "%s: %v", what, err)
	case errors.Is(err, storage.ErrSizeMismatch):
		return errorf(codeSizeMismatch, "%s: %v", what, err)
	}
	// The store's own words name where the bus keeps attachments (an S3
	// endpoint, its bucket, blob names): for the bus's log, not agencies.
	if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		s.log.Warn("attachment service: store unavailable", "op", req.op, "key", req.key, "agency", req.agency, "err", err)
		return errorf(codeUnavailable, "%s: attachment store unavailable; retry later", what)
	}
	s.log.Warn("attachment service: store failed", "op", req.op, "key", req.key, "agency", req.agency, "err", err)
	return errorf(codeInternal, "%s: the attachment store failed (the bus's log has the cause)", what)
}

// onFrame routes a message of a transfer. It never blocks: chunks go to
// the transfer's channel, which the window keeps from filling.
func (s *Service) onFrame(m *nats.Msg) {
	if m.Header.Get(hdrStatus) == noResponders && len(m.Data) == 0 {
		// See transfer.subject. The server's status carries no reply;
		// a consumer's delivery pulled onto this subject by any agency
		// (headers of its choice, see record.Published) always does.
		if !record.Published(m) {
			return
		}
		id := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		s.mu.Lock()
		t := s.transfers[id]
		s.mu.Unlock()
		if t != nil && t.subject == m.Subject {
			t.cancel(errClientGone)
		}
		return
	}
	f, err := decodeFrame(m.Subject, m.Reply, m.Header, m.Data)
	if err != nil {
		s.log.Debug("bad attachment transfer message", "subject", m.Subject, "err", err)
		if s.replyAllowed(m.Subject, m.Reply) {
			s.answer(m.Reply, err)
		}
		return
	}
	s.mu.Lock()
	t := s.transfers[f.id]
	s.mu.Unlock()
	// A transfer answers to its own agency only, and its chunks must name
	// its inbox: anything else is treated as unknown, revealing nothing.
	if t == nil || t.token != f.token || f.inst != s.inst || (f.reply != "" && f.reply != t.inbox) {
		if s.replyAllowed(m.Subject, m.Reply) {
			s.answer(f.reply, errorf(codeBadRequest, "no transfer %s of agency %s on this service: finished, cancelled or never started",
				f.id, envelope.CodeFromToken(f.token)))
		}
		return
	}
	switch f.kind {
	case kindCancel:
		t.cancel(errClientCancelled)
	case kindChunk, kindEOF:
		if t.op != opPut {
			t.cancel(errorf(codeBadRequest, "transfer %s: %s sent on a download", t.id, f.kind))
			return
		}
		if f.reply == "" {
			t.cancel(errorf(codeBadRequest, "transfer %s: %s %d without the client's inbox as reply", t.id, f.kind, f.seq))
			return
		}
		select {
		case t.in <- f:
		default:
			t.cancel(errorf(codeBadRequest, "transfer %s: more than %d chunks sent unacknowledged", t.id, t.window))
		}
	case kindAck:
		if t.op != opGet {
			t.cancel(errorf(codeBadRequest, "transfer %s: ack sent on an upload", t.id))
			return
		}
		if sent := t.sent.Load(); f.seq > sent {
			t.cancel(errorf(codeBadRequest, "transfer %s: ack of chunk %d, only %d sent", t.id, f.seq, sent))
			return
		}
		for {
			cur := t.acked.Load()
			if f.seq <= cur || t.acked.CompareAndSwap(cur, f.seq) {
				break
			}
		}
		select {
		case t.ackc <- struct{}{}:
		default:
		}
	}
}

// waitWindow waits until chunk seq may be sent.
func (t *transfer) waitWindow(seq int64, idle time.Duration) error {
	if seq-t.acked.Load() <= int64(t.window) {
		return nil
	}
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for seq-t.acked.Load() > int64(t.window) {
		select {
		case <-t.ackc:
		case <-t.ctx.Done():
			return context.Cause(t.ctx)
		case <-timer.C:
			err := errorf(codeUnavailable, "get %s: no acknowledgement from the client for %s; transfer %s abandoned", t.key, idle, t.id)
			t.cancel(err)
			return err
		}
	}
	return nil
}

// next waits for the client's next chunk or eof.
func (t *transfer) next(idle time.Duration) (frame, error) {
	select {
	case f := <-t.in:
		return f, nil
	default:
	}
	timer := time.NewTimer(idle)
	defer timer.Stop()
	select {
	case f := <-t.in:
		return f, nil
	case <-t.ctx.Done():
		return frame{}, context.Cause(t.ctx)
	case <-timer.C:
		err := errorf(codeUnavailable, "put: nothing from the client for %s; transfer %s abandoned", idle, t.id)
		t.cancel(err)
		return frame{}, err
	}
}

// putReader is what the store reads an upload from: the client's chunks
// in order, each acknowledged once handed over.
type putReader struct {
	s   *Service
	t   *transfer
	cur []byte
	seq int64
	n   int64
	eof bool
	// waited is the time spent waiting for the client's chunks.
	waited time.Duration
}

func (r *putReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.eof {
			return 0, io.EOF
		}
		waitFrom := time.Now()
		f, err := r.t.next(r.s.cfg.IdleTimeout)
		r.waited += time.Since(waitFrom)
		if err != nil {
			return 0, err
		}
		if f.seq != r.seq+1 {
			return 0, r.fail(errorf(codeBadRequest, "transfer %s: %s %d came after chunk %d", r.t.id, f.kind, f.seq, r.seq))
		}
		r.seq = f.seq
		if f.kind == kindEOF {
			if f.size != r.n {
				return 0, r.fail(errorf(codeSizeMismatch, "put: the client sent %d bytes, %d arrived", f.size, r.n))
			}
			r.eof = true
			return 0, io.EOF
		}
		r.n += int64(len(f.data))
		if r.n > r.s.cfg.MaxSize {
			return 0, r.fail(errorf(codeTooLarge, "put: more than %d bytes, the most the attachment service takes", r.s.cfg.MaxSize))
		}
		if err := r.checkRate(); err != nil {
			return 0, r.fail(err)
		}
		r.cur = f.data
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	if len(r.cur) == 0 {
		ack := newMsg(r.t.inbox, r.t.subject, kindAck, nil, hdrSeq, strconv.FormatInt(r.seq, 10))
		if err := r.s.nc.PublishMsg(ack); err != nil {
			return n, r.fail(errorf(codeUnavailable, "put: acknowledge chunk %d: %v", r.seq, err))
		}
	}
	return n, nil
}

// checkRate refuses an upload that, once the service has waited for its
// client IdleTimeout in all, has come slower than Config.MinRate (see
// there). Only the time spent waiting for the client counts: a store that
// is slow to take the bytes does not make its client look slow.
func (r *putReader) checkRate() *wireError {
	floor := r.s.cfg.MinRate
	if floor <= 0 || r.waited < r.s.cfg.IdleTimeout || float64(r.n) >= floor*r.waited.Seconds() {
		return nil
	}
	return errorf(codeUnavailable, "put: %d bytes in %s of waiting for them, slower than the %.0f bytes a second the attachment service requires; transfer %s abandoned",
		r.n, r.waited.Round(time.Millisecond), floor, r.t.id)
}

// fail ends the transfer with err, so that the dispatcher drops what the
// client still sends.
func (r *putReader) fail(err *wireError) error {
	r.t.cancel(err)
	return err
}

// ctxReader stops reading r once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}

func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
