package vxp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
	"github.com/docaxis/docaxis/signing"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Server.
type Config struct {
	// Client is the bus's own client (what docaxis serve's HTTP API
	// uses): it signs for a system's agencies with the system's key from
	// the home, and receives for them.
	Client *broker.Client
	// Keystore is the bus's home: system secrets (unless Secrets is set)
	// and the CA that signs an agency's binding to a system
	// (registerAgency).
	Keystore *signing.Keystore
	// Secrets gives systems' secrets (default FileSecrets{Keystore}).
	Secrets Secrets
	// AllowRegister lets systems register and delete their own agencies
	// (registerAgency, deleteAgency); off, those are refused.
	AllowRegister bool
	// MaxEdocBytes bounds a sendEdoc body (default 2 GiB); MaxBodyBytes
	// any other body (default 1 MiB).
	MaxEdocBytes int64
	MaxBodyBytes int64
	// MaxSentItems bounds getSentEdocList without a docId (default 500
	// documents, the latest).
	MaxSentItems int
	// TrackWait bounds how long a document's acknowledgement (status 01,
	// updateStatus done), or a status sent with sendEdoc, waits for the
	// bus to apply it, so that the status the system sends next is judged
	// from it (default 3 s; the acknowledgement or status stands either
	// way).
	TrackWait time.Duration
	// Registerer gets the operation metrics (nil: none).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Server is the compatibility API, an http.Handler for the paths below
// /vxp (the prefix stripped or not).
type Server struct {
	cfg     Config
	c       *broker.Client
	secrets Secrets
	log     *slog.Logger
	index   *index
	ops     map[string]operation
	metrics *opMetrics
}

type operation struct {
	method string
	// body is the largest body the operation reads.
	body int64
	run  func(ctx context.Context, w http.ResponseWriter, r *http.Request, c *caller) (answer, *Error)
}

// New returns a server; it opens (or makes) the bucket where it keeps what
// waits for each system.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Client == nil {
		return nil, errors.New("vxp: Config.Client is nil")
	}
	if cfg.Secrets == nil {
		if cfg.Keystore == nil {
			return nil, errors.New("vxp: Config.Keystore or Config.Secrets is needed")
		}
		cfg.Secrets = FileSecrets{Keystore: cfg.Keystore}
	}
	if cfg.MaxEdocBytes <= 0 {
		cfg.MaxEdocBytes = 2 << 30
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxSentItems <= 0 {
		cfg.MaxSentItems = 500
	}
	if cfg.TrackWait <= 0 {
		cfg.TrackWait = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	idx, err := openIndex(ctx, cfg.Client, cfg.Logger)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, c: cfg.Client, secrets: cfg.Secrets, log: cfg.Logger, index: idx}
	s.metrics, err = newOpMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	post := http.MethodPost
	s.ops = map[string]operation{
		"getAgenciesList":     {post, cfg.MaxBodyBytes, s.getAgenciesList},
		"getAgenciesListQD20": {post, cfg.MaxBodyBytes, s.getAgenciesListQD20},
		"getSynchronizeUnit":  {post, cfg.MaxBodyBytes, s.getSynchronizeUnit},
		"registerAgency":      {post, cfg.MaxBodyBytes, s.registerAgency},
		"deleteAgency":        {post, cfg.MaxBodyBytes, s.deleteAgency},
		"sendEdoc":            {post, cfg.MaxEdocBytes + 2, s.sendEdoc},
		"getReceivedEdocList": {post, cfg.MaxBodyBytes, s.getReceivedEdocList},
		"countReceiveEdoc":    {post, cfg.MaxBodyBytes, s.countReceiveEdoc},
		"countReceiveStatus":  {post, cfg.MaxBodyBytes, s.countReceiveStatus},
		"getEdoc":             {post, cfg.MaxBodyBytes, s.getEdoc},
		"downloadEdoc":        {http.MethodGet, cfg.MaxBodyBytes, s.downloadEdoc},
		"updateStatus":        {post, cfg.MaxBodyBytes, s.updateStatus},
		"getSentEdocList":     {post, cfg.MaxBodyBytes, s.getSentEdocList},
	}
	return s, nil
}

// Operation returns the operation a request path names: the last path
// element, whatever comes before it (the endpoint's base, a doubled slash
// from a trailing / in a DMS's endpoint setting).
func Operation(path string) string {
	path = strings.TrimRight(path, "/")
	return path[strings.LastIndexByte(path, '/')+1:]
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name := Operation(r.URL.Path)
	op, known := s.ops[name]
	if !known {
		name = "unknown"
	}
	a, e := s.serve(w, r, name, op, known)
	if a == nil && e == nil {
		s.metrics.done(name, CodeOK, start) // downloadEdoc wrote its body
		return
	}
	if e != nil {
		if e.Code == CodeInternal {
			s.log.Warn("vxp request failed", "op", name, "err", e.Err, "desc", e.Desc)
		} else {
			s.log.Info("vxp request refused", "op", name, "code", e.Code, "desc", e.Desc, "err", e.Err)
		}
		a = failAnswer(e)
		if name == "sendEdoc" {
			a["DocId"] = "" // the SDK needs it even on failure
		}
		s.metrics.done(name, e.Code, start)
	} else {
		s.metrics.done(name, CodeOK, start)
	}
	// The SDK ignores the HTTP status; 200 for every answer keeps
	// sendEdoc's error-stream path (platform charset) out of play.
	writeAnswer(w, http.StatusOK, a)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, name string, op operation, known bool) (answer, *Error) {
	if !known {
		return nil, fail(CodeNotFound, "no VXP operation %q (the path ends with the operation's name, e.g. /vxp/sendEdoc)", Operation(r.URL.Path))
	}
	if r.Method != op.method && !(r.Method == http.MethodPost && name == "downloadEdoc") {
		return nil, fail(CodeMethod, "%s is sent with %s, not %s", name, op.method, r.Method)
	}
	if r.ContentLength > op.body {
		return nil, fail(CodeTooLarge, "%s body of %d bytes: at most %d", name, r.ContentLength, op.body)
	}
	// Read nothing before the signature is checked: a refused request
	// costs no body (and gets no 100 Continue).
	c, e := s.authenticate(r.Context(), r)
	if e != nil {
		return nil, e
	}
	r.Body = http.MaxBytesReader(w, r.Body, op.body)
	if name != "sendEdoc" && name != "registerAgency" {
		// The body is filler ({} or nothing). Reading it answers an
		// Expect: 100-continue (Apache HttpClient waits for it) and keeps
		// the keep-alive connection usable.
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return nil, classify(name, err)
		}
	}
	return op.run(r.Context(), w, r, c)
}

// classify turns a broker error into a failure answer.
func classify(what string, err error) *Error {
	var e *Error
	var mbe *http.MaxBytesError
	var pe *edxml.ParseError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &mbe):
		return &Error{Code: CodeTooLarge, Desc: fmt.Sprintf("%s: body over %d bytes", what, mbe.Limit), Err: err}
	case errors.Is(err, broker.ErrRateLimited):
		// A refusal for now, which the same call passes later: neither
		// PROTOCOL.md nor the code table has one for a rate, so it is the
		// temporary failure on the bus's side (as a failover or a time-out
		// is), not 413, which says the call never passes. Before ErrLimit,
		// which it wraps.
		return &Error{Code: CodeInternal, Desc: what + ": " + err.Error() + "; ask again later", Err: err}
	case errors.Is(err, broker.ErrLimit):
		return &Error{Code: CodeTooLarge, Desc: what + ": " + err.Error(), Err: err}
	case errors.Is(err, broker.ErrNotFound), errors.Is(err, broker.ErrUnknownAgency):
		return &Error{Code: CodeNotFound, Desc: what + ": " + err.Error(), Err: err}
	case errors.Is(err, broker.ErrNotServed), errors.Is(err, broker.ErrEdXMLSender), errors.Is(err, broker.ErrNotRecipient),
		errors.Is(err, record.ErrNotBound), errors.Is(err, broker.ErrServedElsewhere):
		return &Error{Code: CodeForbidden, Desc: what + ": " + err.Error(), Err: err}
	case errors.Is(err, broker.ErrInactive), errors.Is(err, broker.ErrInvalidEntry), errors.Is(err, broker.ErrAttachment), errors.Is(err, broker.ErrUnverified),
		errors.Is(err, envelope.ErrInvalidCode), errors.Is(err, envelope.ErrInvalid), errors.Is(err, envelope.ErrTransition),
		errors.Is(err, envelope.ErrUnknownState), errors.Is(err, envelope.ErrAttachmentName), errors.As(err, &pe):
		return &Error{Code: CodeBadRequest, Desc: what + ": " + err.Error(), Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeInternal, Desc: what + ": timed out", Err: err}
	}
	return &Error{Code: CodeInternal, Desc: what + " failed on the bus; see its log", Err: err}
}
