package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/alerts"
	"github.com/docaxis/docaxis/broker/report"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
	"github.com/docaxis/docaxis/signing"
)

// The operator's page and its API (/v1/operator/...): the directory as a
// tree, document systems, the quarantine with retry and its audit trail,
// federation links, alerts and statistics. Only operator tokens open it;
// an agency's token gets 401 there, as an operator's gets 401 on the
// agencies' API.

// OperatorConfig turns the operator's page on (Config.Operator).
type OperatorConfig struct {
	// Auth checks operator tokens (usually *OperatorTokens).
	Auth OperatorAuthenticator
	// Systems lists the document systems (optional).
	Systems OperatorSystems
	// Alerts lists the alerts (optional: an *alerts.Manager).
	Alerts OperatorAlerts
	// Links lists the federation links (optional).
	Links OperatorLinks
	// Replicas of the audit trail stream when it is created (default 1).
	Replicas int
}

// OperatorSystem is a document system as the page shows it.
type OperatorSystem struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Certificate string    `json:"-"`
	Added       time.Time `json:"added,omitzero"`
}

// OperatorSystems lists document systems.
type OperatorSystems interface {
	Systems(ctx context.Context) ([]OperatorSystem, error)
}

// OperatorAlerts lists alerts.
type OperatorAlerts interface {
	Alerts(ctx context.Context) ([]alerts.Alert, error)
}

// OperatorLink is a federation link as the page shows it.
type OperatorLink struct {
	Peer         string     `json:"peer"`
	State        string     `json:"state"`
	RTT          string     `json:"rtt,omitempty"`
	Backlog      uint64     `json:"backlog"`
	LastDelivery *time.Time `json:"last_delivery,omitempty"`
	Error        string     `json:"error,omitempty"`
}

// OperatorLinks lists federation links.
type OperatorLinks interface {
	Links(ctx context.Context) ([]OperatorLink, error)
}

// Bounds of the operator API's queries.
const (
	maxOperatorQuery = 2048 // the whole query string, bytes
	maxSearchText    = 200  // q, bytes
	maxPage          = 500  // limit
	defaultPage      = 100
	statsCacheTTL    = 30 * time.Second
	maxStatsRange    = 3 * 366 * 24 * time.Hour
)

type operator struct {
	cfg   OperatorConfig
	dir   dirCache
	log   *operatorLog
	mu    sync.Mutex
	stats map[string]statsEntry
}

type statsEntry struct {
	at time.Time
	r  *report.Report
}

func (s *Server) operatorRoutes() {
	s.op = &operator{cfg: *s.cfg.Operator, log: &operatorLog{js: s.c.JetStream(), replicas: s.cfg.Operator.Replicas}, stats: map[string]statsEntry{}}
	m := s.mux
	m.HandleFunc("GET /operator", s.web.operatorPage)
	m.HandleFunc("GET /v1/operator/me", s.operatorAuthed(s.opMe))
	m.HandleFunc("GET /v1/operator/directory", s.operatorAuthed(s.opDirectory))
	m.HandleFunc("GET /v1/operator/directory/{code}", s.operatorAuthed(s.opAgency))
	m.HandleFunc("GET /v1/operator/systems", s.operatorAuthed(s.opSystems))
	m.HandleFunc("GET /v1/operator/systems/{id}/agencies", s.operatorAuthed(s.opSystemAgencies))
	m.HandleFunc("GET /v1/operator/quarantine", s.operatorAuthed(s.opQuarantine))
	m.HandleFunc("GET /v1/operator/quarantine/{seq}", s.operatorAuthed(s.opQuarantineEntry))
	m.HandleFunc("POST /v1/operator/quarantine/{seq}/retry", s.operatorAuthed(s.opQuarantineRetry))
	m.HandleFunc("GET /v1/operator/audit", s.operatorAuthed(s.opAudit))
	m.HandleFunc("GET /v1/operator/federation", s.operatorAuthed(s.opFederation))
	m.HandleFunc("GET /v1/operator/alerts", s.operatorAuthed(s.opAlerts))
	m.HandleFunc("GET /v1/operator/stats", s.operatorAuthed(s.opStats))
}

// operatorAuthed checks an operator token, the query's size, and the
// operator's rate, then runs h.
func (s *Server) operatorAuthed(h func(w http.ResponseWriter, r *http.Request, operator string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			writeError(w, apiError(http.StatusUnauthorized, CodeUnauthorized, "missing 'Authorization: Bearer TOKEN' header with an operator token (make one with: docaxis operator token NAME)"))
			return
		}
		name, err := s.op.cfg.Auth.AuthenticateOperator(r.Context(), token)
		switch {
		case errors.Is(err, ErrInvalidToken), errors.Is(err, ErrTokenRevoked):
			writeError(w, &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: err.Error(), Err: err})
			return
		case err != nil:
			s.fail(w, r, fmt.Errorf("check operator token: %w", err))
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.agency = "operator:" + name
		}
		if wait, ok := s.limiter.Take("operator:"+name, s.rate, time.Now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(wait.Round(time.Second)/time.Second))))
			writeError(w, apiError(http.StatusTooManyRequests, CodeRateLimited, "operator %s is over %g requests per second; retry after %s", name, s.limits.Rate, wait.Round(time.Millisecond)))
			return
		}
		if len(r.URL.RawQuery) > maxOperatorQuery {
			writeError(w, apiError(http.StatusBadRequest, CodeBadRequest, "query is %d bytes, at most %d", len(r.URL.RawQuery), maxOperatorQuery))
			return
		}
		if _, err := queryValues(r); err != nil {
			writeError(w, err.(*Error))
			return
		}
		h(w, r, name)
	}
}

func queryValues(r *http.Request) (url.Values, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, apiError(http.StatusBadRequest, CodeBadRequest, "malformed query: %v", err)
	}
	for k, vals := range v {
		if len(vals) > 1 {
			return nil, apiError(http.StatusBadRequest, CodeBadRequest, "query parameter %q given %d times, at most once", cut(k, 32), len(vals))
		}
		for _, s := range append(vals, k) {
			if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				return nil, apiError(http.StatusBadRequest, CodeBadRequest, "query parameter %q: not printable UTF-8 text", cut(k, 32))
			}
		}
	}
	return v, nil
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// pageParams reads offset and limit.
func pageParams(r *http.Request) (offset, limit int, err error) {
	q := r.URL.Query()
	limit = defaultPage
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxPage {
			return 0, 0, apiError(http.StatusBadRequest, CodeBadRequest, "limit %q: want 1 to %d", cut(v, 32), maxPage)
		}
	}
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 || offset > 1<<24 {
			return 0, 0, apiError(http.StatusBadRequest, CodeBadRequest, "offset %q: want a number from 0", cut(v, 32))
		}
	}
	return offset, limit, nil
}

func (s *Server) opMe(w http.ResponseWriter, _ *http.Request, name string) {
	features := map[string]bool{"systems": s.op.cfg.Systems != nil, "alerts": s.op.cfg.Alerts != nil, "federation": s.op.cfg.Links != nil}
	writeJSON(w, http.StatusOK, map[string]any{"operator": name, "title": s.cfg.Title, "bus": s.c.Bus(), "features": features})
}

// opDirectory answers the children of ?parent= ("" for the top), or the
// entries matching ?q= (words, without diacritics or with), a page at a time.
func (s *Server) opDirectory(w http.ResponseWriter, r *http.Request, _ string) {
	offset, limit, err := pageParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q, parent := r.URL.Query().Get("q"), r.URL.Query().Get("parent")
	if len(q) > maxSearchText {
		s.fail(w, r, apiError(http.StatusBadRequest, CodeBadRequest, "q is %d bytes, at most %d", len(q), maxSearchText))
		return
	}
	if parent != "" && envelope.CheckNonStandardCode(parent) != nil {
		s.fail(w, r, apiError(http.StatusBadRequest, CodeBadRequest, "parent %q is not an agency code", cut(parent, 64)))
		return
	}
	idx, err := s.op.dir.index(r.Context(), s.c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var ids []int
	more := false
	if strings.TrimSpace(q) != "" {
		ids, more = idx.search(q, offset, limit)
	} else {
		all := idx.children[parent]
		if offset < len(all) {
			ids = all[offset:min(len(all), offset+limit)]
		}
		more = offset+limit < len(all)
	}
	out := make([]operatorAgency, len(ids))
	for i, id := range ids {
		out[i] = idx.view(id, q != "")
	}
	next := -1
	if more {
		next = offset + len(ids)
	}
	writeJSON(w, http.StatusOK, map[string]any{"agencies": out, "total": len(idx.entries), "next": next})
}

func (s *Server) opAgency(w http.ResponseWriter, r *http.Request, _ string) {
	code := r.PathValue("code")
	if envelope.CheckNonStandardCode(code) != nil {
		s.fail(w, r, apiError(http.StatusBadRequest, CodeBadRequest, "%q is not an agency code", cut(code, 64)))
		return
	}
	idx, err := s.op.dir.index(r.Context(), s.c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	i, ok := idx.byCode[code]
	if !ok {
		s.fail(w, r, apiError(http.StatusNotFound, CodeNotFound, "no agency %s in the directory", code))
		return
	}
	v := idx.view(i, true)
	out := map[string]any{"agency": v}
	if certs, err := signing.ParseCerts([]byte(idx.entries[i].Agency.Certificate)); err == nil && len(certs) > 0 {
		out["certificate"] = map[string]any{"subject": certs[0].Subject.String(), "issuer": certs[0].Issuer.String(),
			"not_before": certs[0].NotBefore.UTC(), "not_after": certs[0].NotAfter.UTC()}
	}
	writeJSON(w, http.StatusOK, out)
}

type systemView struct {
	OperatorSystem
	NotAfter *time.Time `json:"not_after,omitempty"`
	Agencies int        `json:"agencies"`
}

func (s *Server) opSystems(w http.ResponseWriter, r *http.Request, _ string) {
	idx, err := s.op.dir.index(r.Context(), s.c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var list []OperatorSystem
	if s.op.cfg.Systems != nil {
		if list, err = s.op.cfg.Systems.Systems(r.Context()); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	out := []systemView{}
	seen := map[string]bool{}
	for _, sys := range list {
		v := systemView{OperatorSystem: sys, Agencies: len(idx.bySystem[sys.ID])}
		if certs, err := signing.ParseCerts([]byte(sys.Certificate)); err == nil && len(certs) > 0 {
			na := certs[0].NotAfter.UTC()
			v.NotAfter = &na
		}
		seen[sys.ID] = true
		out = append(out, v)
	}
	// Systems agencies name that the list does not know are shown too:
	// their agencies cannot send until the system is registered.
	for id, members := range idx.bySystem {
		if !seen[id] {
			out = append(out, systemView{OperatorSystem: OperatorSystem{ID: id}, Agencies: len(members)})
		}
	}
	slices.SortFunc(out, func(a, b systemView) int { return strings.Compare(a.ID, b.ID) })
	writeJSON(w, http.StatusOK, map[string]any{"systems": out})
}

func (s *Server) opSystemAgencies(w http.ResponseWriter, r *http.Request, _ string) {
	id := r.PathValue("id")
	if id == "" || len(id) > 128 {
		s.fail(w, r, apiError(http.StatusBadRequest, CodeBadRequest, "system id: 1 to 128 bytes"))
		return
	}
	offset, limit, err := pageParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	idx, err := s.op.dir.index(r.Context(), s.c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	all := idx.bySystem[id]
	out := []operatorAgency{}
	if offset < len(all) {
		for _, i := range all[offset:min(len(all), offset+limit)] {
			out = append(out, idx.view(i, false))
		}
	}
	next := -1
	if offset+limit < len(all) {
		next = offset + limit
	}
	writeJSON(w, http.StatusOK, map[string]any{"agencies": out, "total": len(all), "next": next})
}

func (s *Server) opQuarantine(w http.ResponseWriter, r *http.Request, _ string) {
	offset, limit, err := pageParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	agency := r.URL.Query().Get("agency")
	if agency != "" && agency != broker.FederationQuarantine && envelope.CheckNonStandardCode(agency) != nil {
		s.fail(w, r, apiError(http.StatusBadRequest, CodeBadRequest, "agency %q is not an agency code", cut(agency, 64)))
		return
	}
	list, err := s.c.QuarantineList(r.Context(), agency)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	slices.Reverse(list) // newest first
	total := len(list)
	page := []broker.Quarantined{}
	if offset < total {
		page = list[offset:min(total, offset+limit)]
	}
	next := -1
	if offset+limit < total {
		next = offset + limit
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": page, "total": total, "next": next})
}

func quarantineSeq(r *http.Request) (string, error) {
	v := r.PathValue("seq")
	if n, err := strconv.ParseUint(v, 10, 64); err != nil || n == 0 {
		return "", apiError(http.StatusBadRequest, CodeBadRequest, "%q is not a quarantine sequence (a positive number)", cut(v, 32))
	}
	return v, nil
}

// opQuarantineEntry answers an entry and the message it holds, read from
// the record it points to and verified as its recipient would.
func (s *Server) opQuarantineEntry(w http.ResponseWriter, r *http.Request, _ string) {
	seq, err := quarantineSeq(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q, err := s.c.QuarantineEntry(r.Context(), seq)
	if errors.Is(err, broker.ErrNotQuarantined) {
		s.fail(w, r, apiError(http.StatusNotFound, CodeNotFound, "no quarantine entry %s", seq))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := map[string]any{"entry": q}
	if q.OriginSeq > 0 {
		msg := map[string]any{"seq": q.OriginSeq}
		se, err := s.c.ReadEnvelope(r.Context(), q.OriginSeq)
		switch {
		case err != nil:
			msg["error"] = err.Error()
		default:
			msg["size"] = len(se.Raw)
			msg["stored"] = se.Stored
			msg["verified"] = se.Verified()
			if se.Err != nil {
				msg["error"] = se.Err.Error()
			}
			if e := se.Envelope; e != nil {
				msg["envelope"] = map[string]any{"id": e.ID, "kind": e.Kind, "from": e.From, "to": e.To, "created": e.Created,
					"subject": e.Subject, "document": e.Document, "attachments": e.Attachments}
			}
		}
		out["message"] = msg
	}
	writeJSON(w, http.StatusOK, out)
}

// opQuarantineRetry re-drives an entry and writes who did it, and how it
// went, on the audit trail before answering.
func (s *Server) opQuarantineRetry(w http.ResponseWriter, r *http.Request, name string) {
	seq, err := quarantineSeq(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q, rerr := s.c.QuarantineRetry(r.Context(), seq)
	if errors.Is(rerr, broker.ErrNotQuarantined) {
		s.fail(w, r, apiError(http.StatusNotFound, CodeNotFound, "no quarantine entry %s", seq))
		return
	}
	a := OperatorAction{At: time.Now().UTC(), Operator: name, Action: "quarantine.retry", Target: seq, Result: "ok"}
	if q != nil {
		a.Agency, a.Envelope = q.Agency, q.Envelope
	}
	if rerr != nil {
		a.Result = rerr.Error()
	}
	// The trail is written whatever the outcome; if it cannot be, the
	// operator hears it (the retry itself is done or not, as said).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if err := s.op.log.write(ctx, a); err != nil {
		s.fail(w, r, fmt.Errorf("quarantine %s: retry %s, but %w", seq, a.Result, err))
		return
	}
	if rerr != nil {
		if errors.Is(rerr, broker.ErrNotInRecord) || errors.Is(rerr, broker.ErrFederationEntry) {
			s.fail(w, r, &Error{Status: http.StatusConflict, Code: CodeConflict, Message: rerr.Error(), Err: rerr})
			return
		}
		s.fail(w, r, rerr)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"retried": q, "audit": a})
}

func (s *Server) opAudit(w http.ResponseWriter, r *http.Request, _ string) {
	_, limit, err := pageParams(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.op.log.last(r.Context(), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"actions": list})
}

func (s *Server) opFederation(w http.ResponseWriter, r *http.Request, _ string) {
	links := []OperatorLink{}
	if s.op.cfg.Links != nil {
		l, err := s.op.cfg.Links.Links(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		links = append(links, l...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"bus": s.c.Bus(), "links": links})
}

func (s *Server) opAlerts(w http.ResponseWriter, r *http.Request, _ string) {
	list := []alerts.Alert{}
	if s.op.cfg.Alerts != nil {
		l, err := s.op.cfg.Alerts.Alerts(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		list = append(list, l...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": list})
}

// opStats answers the report of ?from=&to= (dates, to included), ?by=
// and ?period=; the same question within statsCacheTTL is answered from
// the last reading, since a reading goes through every tracking pair.
func (s *Server) opStats(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	day := func(name string, def time.Time) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return def, nil
		}
		t, err := time.ParseInLocation(time.DateOnly, v, edxml.Vietnam)
		if err != nil {
			return t, apiError(http.StatusBadRequest, CodeBadRequest, "%s %q: want a date YYYY-MM-DD", name, cut(v, 32))
		}
		return t, nil
	}
	today := time.Now().In(edxml.Vietnam)
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, edxml.Vietnam)
	from, err := day("from", today.AddDate(0, 0, -29))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	to, err := day("to", today)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	to = to.AddDate(0, 0, 1)
	if to.Sub(from) > maxStatsRange {
		s.fail(w, r, apiError(http.StatusBadRequest, CodeBadRequest, "from %s to %s: at most three years at a time", from.Format(time.DateOnly), to.Format(time.DateOnly)))
		return
	}
	o := report.Options{From: from, To: to, By: report.By(q.Get("by")), Period: report.Period(q.Get("period"))}
	if o.Period == "" {
		o.Period = report.Day
	}
	key := fmt.Sprint(o.From.Unix(), o.To.Unix(), o.By, o.Period)
	s.op.mu.Lock()
	cached, ok := s.op.stats[key]
	s.op.mu.Unlock()
	if ok && time.Since(cached.at) < statsCacheTTL {
		writeJSON(w, http.StatusOK, cached.r)
		return
	}
	rep, err := report.Make(r.Context(), s.c, o)
	if errors.Is(err, report.ErrBadOptions) {
		s.fail(w, r, apiError(http.StatusBadRequest, CodeBadRequest, "%v", err))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.op.mu.Lock()
	for k, e := range s.op.stats {
		if time.Since(e.at) >= statsCacheTTL {
			delete(s.op.stats, k)
		}
	}
	s.op.stats[key] = statsEntry{at: time.Now(), r: rep}
	s.op.mu.Unlock()
	writeJSON(w, http.StatusOK, rep)
}
