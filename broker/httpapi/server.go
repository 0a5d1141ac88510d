package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/broker/ratelimit"
)

// Limits bound what one request and one agency may cost. Zero fields take
// the defaults.
type Limits struct {
	// MaxRequestBytes bounds a request body, all parts included
	// (default 2 GiB).
	MaxRequestBytes int64
	// MaxAttachmentBytes bounds one attachment (default 1 GiB).
	MaxAttachmentBytes int64
	// MaxAttachments bounds the attachments of one envelope (default 100).
	MaxAttachments int
	// MaxJSONBytes bounds a JSON body or the meta part (default 1 MiB).
	MaxJSONBytes int64
	// Rate is the sustained requests per second allowed per agency
	// (default 20; negative: no limit), Burst how many may come at once
	// (default 3×Rate).
	Rate  float64
	Burst int
	// BodyTimeout is how long a request body may take before MinBodyRate
	// applies, and the longest pause allowed while it streams (default
	// 30s). A body slower than that is cut with 408.
	BodyTimeout time.Duration
	// MinBodyRate is the slowest a request body may arrive once
	// BodyTimeout has passed, in bytes per second (default 16 KiB/s): a
	// large upload earns time in proportion to its size.
	MinBodyRate int64
	// WriteStall is how long one write of a download or an event stream
	// may wait on a client that does not read (default 1m).
	WriteStall time.Duration
	// MaxEventStreams bounds the event streams (GET /v1/events) open at
	// once with one token (default 8: a clerk's page holds one per tab).
	MaxEventStreams int
	// ListScan bounds the documents one list call examines when it
	// filters (q, from, to, overdue) (default 1000); the answer then says
	// where to go on.
	ListScan int
}

func (l *Limits) defaults() {
	if l.MaxRequestBytes == 0 {
		l.MaxRequestBytes = 2 << 30
	}
	if l.MaxAttachmentBytes == 0 {
		l.MaxAttachmentBytes = 1 << 30
	}
	if l.MaxAttachments == 0 {
		l.MaxAttachments = 100
	}
	if l.MaxJSONBytes == 0 {
		l.MaxJSONBytes = 1 << 20
	}
	if l.Rate == 0 {
		l.Rate = 20
	}
	if l.Burst == 0 {
		l.Burst = max(1, int(3*l.Rate))
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = 30 * time.Second
	}
	if l.MinBodyRate <= 0 {
		l.MinBodyRate = 16 << 10
	}
	if l.WriteStall <= 0 {
		l.WriteStall = time.Minute
	}
	if l.MaxEventStreams <= 0 {
		l.MaxEventStreams = 8
	}
	if l.ListScan <= 0 {
		l.ListScan = 1000
	}
}

// Config configures a Server.
type Config struct {
	// Client talks to the bus. It must hold, or be able to load
	// (broker.WithKeystore), the identity of every agency the server signs
	// envelopes and receipts for.
	Client *broker.Client
	// Auth maps bearer tokens to agencies (usually *Tokens).
	Auth Authenticator
	// Limits; zero fields take the defaults.
	Limits Limits
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Evidence serves GET /v1/envelopes/{id}/evidence (evidence.go); nil:
	// 404.
	Evidence EvidenceSource
	// Title is shown on the web page (default "docaxis").
	Title string
	// Version of the bus, shown in the page's footer ("" shows none).
	Version string
	// TrackWait bounds how long a send, an acknowledgement or a status
	// (JSON or edXML) waits for the tracker to record it, so that the
	// caller reads its own writes (default 3s).
	TrackWait time.Duration
	// Routes adds handlers the bus serves beside the API without a token.
	// Nothing private belongs here: every client of the listener reaches
	// them (docaxis serve puts /metrics on a listener of its own).
	Routes map[string]http.Handler
	// Receive is the receive policy of acknowledgements (PDF checks,
	// attachment checks), as a mailbox's options: an envelope acknowledged
	// over HTTP passes the checks one received through a mailbox does.
	Receive []broker.MailboxOption
	// VXP, when set, serves the national axis's own API (package vxp)
	// below /vxp, authenticated by its own signatures, not tokens.
	VXP http.Handler
	// Operator, when set, serves the operator's page on /operator and its
	// API on /v1/operator/ (operator.go).
	Operator *OperatorConfig
}

// Server is the HTTP API and the web page. It is an http.Handler; Serve
// and Shutdown run it on a listener with graceful shutdown.
type Server struct {
	cfg     Config
	c       *broker.Client
	auth    Authenticator
	log     *slog.Logger
	limits  Limits
	mux     *http.ServeMux
	limiter *ratelimit.Limiter // per agency and operator; never pruned: agencies are few
	rate    ratelimit.Rate
	streams *streamCounter
	held    *heldObjects
	cache   *envelopeCache
	web     *webUI
	op      *operator // nil without Config.Operator

	floorsMu sync.Mutex
	floors   map[string]uint64 // per agency: mailbox copies at or before are handled

	// draining is closed when shutdown starts: event streams end, new
	// requests are refused, requests in flight (uploads) finish.
	draining  chan struct{}
	drainOnce sync.Once
	hsMu      sync.Mutex
	hs        *http.Server
}

// New returns a server.
func New(cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("httpapi: Config.Client is nil")
	}
	if cfg.Auth == nil {
		return nil, errors.New("httpapi: Config.Auth is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Title == "" {
		cfg.Title = "docaxis"
	}
	if cfg.TrackWait == 0 {
		cfg.TrackWait = 3 * time.Second
	}
	cfg.Limits.defaults()
	s := &Server{
		cfg: cfg, c: cfg.Client, auth: cfg.Auth, log: cfg.Logger, limits: cfg.Limits,
		mux:      http.NewServeMux(),
		limiter:  &ratelimit.Limiter{},
		rate:     ratelimit.Rate{PerSecond: cfg.Limits.Rate, Burst: float64(cfg.Limits.Burst)},
		streams:  newStreamCounter(cfg.Limits.MaxEventStreams),
		held:     newHeldObjects(),
		cache:    newEnvelopeCache(4096, 5*time.Minute),
		floors:   map[string]uint64{},
		draining: make(chan struct{}),
	}
	web, err := newWebUI(cfg.Title, cfg.Version)
	if err != nil {
		return nil, err
	}
	s.web = web
	s.routes()
	s.edxmlRoutes()
	if cfg.Operator != nil {
		if cfg.Operator.Auth == nil {
			return nil, errors.New("httpapi: Config.Operator.Auth is nil")
		}
		s.operatorRoutes()
	}
	for pattern, h := range cfg.Routes {
		s.mux.Handle(pattern, h)
	}
	return s, nil
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /v1/openapi.json", s.openAPI)
	m.HandleFunc("GET /v1/me", s.authed(s.getMe))
	m.HandleFunc("GET /v1/agencies", s.authed(s.getAgencies))
	m.HandleFunc("POST /v1/envelopes", s.authed(s.postEnvelope))
	m.HandleFunc("GET /v1/envelopes", s.authed(s.listDocuments))
	m.HandleFunc("GET /v1/envelopes/{id}", s.authed(s.getEnvelope))
	m.HandleFunc("GET /v1/envelopes/{id}/attachments/{name}", s.authed(s.getAttachment))
	m.HandleFunc("GET /v1/envelopes/{id}/status", s.authed(s.getStatus))
	m.HandleFunc("GET /v1/envelopes/{id}/evidence", s.authed(s.getEvidence))
	m.HandleFunc("POST /v1/envelopes/{id}/status", s.authed(s.postStatus))
	m.HandleFunc("GET /v1/inbox", s.authed(s.getInbox))
	m.HandleFunc("POST /v1/inbox/{id}/ack", s.authed(s.postAck))
	m.HandleFunc("GET /v1/events", s.authed(s.getEvents))
	m.HandleFunc("GET /{$}", s.web.index)
	m.Handle("GET /static/", s.web.static)
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// A write deadline a download or an event stream left on this
	// connection is not this request's.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	paceBody(w, r, s.limits.BodyTimeout, s.limits.MinBodyRate)
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	defer func() {
		s.log.Debug("http", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"bytes", rec.bytes, "agency", rec.agency, "took", time.Since(start))
	}()
	select {
	case <-s.draining:
		w.Header().Set("Connection", "close")
		writeError(rec, apiError(http.StatusServiceUnavailable, CodeUnavailable, "server is shutting down"))
		return
	default:
	}
	if p := r.URL.Path; s.cfg.VXP != nil && (p == "/vxp" || strings.HasPrefix(p, "/vxp/")) {
		// Before the mux: it would redirect the "//sendEdoc" a DMS's
		// endpoint with a trailing slash makes, and the SDK does not
		// follow redirects of a POST.
		s.cfg.VXP.ServeHTTP(rec, r)
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.unrouted(rec, r)
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// unrouted answers JSON where the mux would answer plain text.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request) {
	probe := &headerOnly{h: http.Header{}}
	h, _ := s.mux.Handler(r)
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", probe.h.Get("Allow"))
		writeError(w, apiError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, probe.h.Get("Allow")))
		return
	}
	writeError(w, apiError(http.StatusNotFound, CodeNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
}

// headerOnly records what the mux's own 404/405 handler would answer.
type headerOnly struct {
	h      http.Header
	status int
}

func (p *headerOnly) Header() http.Header         { return p.h }
func (p *headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerOnly) WriteHeader(code int)        { p.status = code }

// recorder keeps the status for the access log; Unwrap lets
// http.ResponseController reach Flush on the real writer.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	agency string
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// authed checks the bearer token and the agency's rate, then runs h.
func (s *Server) authed(h func(w http.ResponseWriter, r *http.Request, agency string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			writeError(w, apiError(http.StatusUnauthorized, CodeUnauthorized, "missing 'Authorization: Bearer TOKEN' header (make a token with: docaxis agency token CODE)"))
			return
		}
		agency, err := s.identify(r, token)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.agency = agency
		}
		r = r.WithContext(context.WithValue(r.Context(), tokenKey{}, HashToken(token)))
		if wait, ok := s.limiter.Take(agency, s.rate, time.Now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(wait.Round(time.Second)/time.Second))))
			writeError(w, apiError(http.StatusTooManyRequests, CodeRateLimited, "agency %s is over %g requests per second; retry after %s", agency, s.limits.Rate, wait.Round(time.Millisecond)))
			return
		}
		h(w, r, agency)
	}
}

// identify returns the agency token acts for in request r: the token's
// own, or for a document system's token the agency ?as= names, which the
// system must serve. A refusal is an *Error (401, 400 or 403).
func (s *Server) identify(r *http.Request, token string) (string, error) {
	agency, err := s.auth.Authenticate(r.Context(), token)
	switch {
	case errors.Is(err, ErrInvalidToken), errors.Is(err, ErrTokenRevoked):
		return "", &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: err.Error(), Err: err}
	case err != nil:
		return "", fmt.Errorf("check token: %w", err)
	}
	if sys := broker.SystemOfActor(agency); sys != "" {
		return s.systemAgency(r, sys)
	}
	return agency, nil
}

// tokenKey holds, in a request's context, the hash of the token that
// authenticated it (limits per token).
type tokenKey struct{}

func tokenOf(r *http.Request) string {
	h, _ := r.Context().Value(tokenKey{}).(string)
	return h
}

func bearer(r *http.Request) (string, bool) {
	v := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// fail answers err; server-side problems are logged.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		return // the client went away
	}
	e := classify(err)
	if e.Status >= 500 {
		s.log.Warn("http request failed", "method", r.Method, "path", r.URL.Path, "status", e.Status, "err", err)
	}
	if e.Code == CodeRateLimited && errors.Is(err, broker.ErrRateLimited) {
		// The bus's publish rate, with a burst of as many: one more
		// envelope may go after 1/rate seconds.
		wait := time.Second
		if rate := s.c.Limits().PublishRate; rate > 0 {
			wait = max(wait, time.Duration(float64(time.Second)/rate))
		}
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
	}
	writeError(w, e)
}

// Serve accepts connections on l until Shutdown. It returns nil after a
// graceful shutdown.
func (s *Server) Serve(l net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// No whole-request read or write timeout: uploads and downloads
		// of large attachments and event streams take as long as they
		// take. Bodies are held to a minimum rate and writes to a stall
		// limit instead (deadlines.go), in ServeHTTP, so that any
		// http.Server serving s (httptest's too) has them.
	}
	hs.RegisterOnShutdown(s.Drain)
	s.hsMu.Lock()
	s.hs = hs
	s.hsMu.Unlock()
	if err := hs.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting connections, ends event streams, and waits for
// requests in flight, uploads included, to finish or ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.Drain()
	s.hsMu.Lock()
	hs := s.hs
	s.hsMu.Unlock()
	if hs == nil {
		return nil
	}
	return hs.Shutdown(ctx)
}

// Drain ends event streams and refuses new requests; requests in flight
// go on. Shutdown calls it; a caller serving s with its own http.Server
// registers it with RegisterOnShutdown, or event streams hold the
// shutdown until its deadline.
func (s *Server) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// AsHeader names, beside the ?as= parameter, the agency a document
// system's token acts for.
const AsHeader = "X-Docaxis-As"

// systemAgency is the agency a request with document system sys's token
// acts for: the one named by ?as= (or X-Docaxis-As), which the system must
// serve now. A removed system's token is dead.
func (s *Server) systemAgency(r *http.Request, sys string) (string, error) {
	as := strings.TrimSpace(r.URL.Query().Get("as"))
	if as == "" {
		as = strings.TrimSpace(r.Header.Get(AsHeader))
	}
	ctx := r.Context()
	if _, err := s.c.LookupSystem(ctx, sys); err != nil {
		if err = broker.DirectoryRead(err, broker.ErrUnknownSystem); errors.Is(err, broker.ErrUnknownSystem) {
			return "", &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: fmt.Sprintf("%v: its tokens no longer work", err), Err: ErrTokenRevoked}
		}
		return "", err // the directory cannot be read now: no refusal
	}
	if as == "" {
		return "", apiError(http.StatusBadRequest, CodeBadRequest, "the token is document system %s's: name the agency it acts for with ?as=CODE or the %s header", sys, AsHeader)
	}
	a, err := s.c.LookupAgency(ctx, as)
	if err := broker.Served(a, err, sys, as); err != nil {
		if errors.Is(err, failover.ErrUnavailable) {
			return "", err // the directory cannot be read now: no refusal
		}
		// An agency of another system is not told from an unknown one.
		return "", apiError(http.StatusForbidden, CodeForbidden, "document system %s does not serve agency %q", sys, as)
	}
	return as, nil
}
