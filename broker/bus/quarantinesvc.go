package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/ratelimit"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/broker/responder"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The quarantine service: agencies may not write the quarantine; they ask
// the bus, on axis.svc.quarantine.<own token> (their permissions allow no
// other token), to quarantine a copy of their own mailbox named by its
// record sequence, or whether the bus refused a copy of their mailbox for
// the publish rate (see rategate.go). The bus reads the copy from the record
// itself and writes the entry with headers derived from it.
//
// Request: headers Docaxis-Op ("quarantine", the default, or "check"),
// Docaxis-Origin-Seq (the copy's record sequence) and, for quarantine,
// Docaxis-Deliveries; the body is the reason (quarantine: 1 to
// MaxQuarantineReason bytes of UTF-8 text without control characters;
// check: empty). Answer: Docaxis-Quarantine-Seq (the entry's sequence) or
// Docaxis-Verdict ("admitted" or "refused", the reason in the body); or
// Docaxis-Error with a code and the reason in the body (record.HeaderOp
// and the like).

const (
	// quarantineQueue shares the requests among the bus's processes.
	quarantineQueue = "docaxis-quarantine"

	// Requests per second (and burst) one agency may make, per bus
	// process, that read a copy from the record: quarantines of copies not
	// quarantined lately, and publish-rate checks of copies whose owner
	// is not remembered. Asking again about the same copy costs no read and
	// is not counted.
	quarantineRequestRate = 50
	// quarantineRecent bounds the copies remembered as quarantined, and
	// the old copies remembered as belonging to the agency that asked.
	quarantineRecent = 16384
	// quarantineWorkers bounds the requests handled at once,
	// quarantinePerAgency those of one agency (a mailbox checks its copies
	// concurrently): beyond, the answer is "unavailable, retry".
	quarantineWorkers   = 16
	quarantinePerAgency = 8
)

// quarantineRequest is a decoded request.
type quarantineRequest struct {
	op         string
	agency     string
	seq        uint64
	deliveries uint64
	reason     string
}

// decodeQuarantineRequest checks a request to axis.svc.quarantine.<token>.
// The error is a *record.ServiceError ready to answer.
func decodeQuarantineRequest(subject string, h nats.Header, body []byte) (quarantineRequest, error) {
	token, ok := strings.CutPrefix(subject, record.QuarantineServicePrefix)
	if !ok || token == "" || strings.Contains(token, ".") {
		return quarantineRequest{}, record.ServiceErrorf(record.CodeBadRequest, "subject %q: want %s<agency>", subject, record.QuarantineServicePrefix)
	}
	code := envelope.CodeFromToken(token)
	if err := envelope.CheckNonStandardCode(code); err != nil || envelope.Token(code) != token {
		return quarantineRequest{}, record.ServiceErrorf(record.CodeBadRequest, "subject %q: %q is not an agency token", subject, token)
	}
	req := quarantineRequest{op: h.Get(record.HeaderOp), agency: code}
	if req.op == "" {
		req.op = record.OpQuarantine
	}
	if req.op != record.OpQuarantine && req.op != record.OpCheck {
		return quarantineRequest{}, record.ServiceErrorf(record.CodeBadRequest, "header %s is %q, want %q or %q", record.HeaderOp, record.Cut(req.op, 64), record.OpQuarantine, record.OpCheck)
	}
	seq, err := strconv.ParseUint(h.Get(record.HeaderOriginSeq), 10, 64)
	if err != nil || seq == 0 || len(h.Values(record.HeaderOriginSeq)) != 1 {
		return quarantineRequest{}, record.ServiceErrorf(record.CodeBadRequest, "header %s is %q, want one record sequence (a positive number)", record.HeaderOriginSeq, record.Cut(h.Get(record.HeaderOriginSeq), 64))
	}
	req.seq = seq
	if req.op == record.OpCheck {
		if len(body) > 0 {
			return quarantineRequest{}, record.ServiceErrorf(record.CodeBadRequest, "check carries %d unexpected bytes", len(body))
		}
		return req, nil
	}
	if v := h.Get(record.HeaderDeliveries); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > record.MaxDeliveries {
			return quarantineRequest{}, record.ServiceErrorf(record.CodeBadRequest, "header %s is %q, want a delivery count up to %d", record.HeaderDeliveries, record.Cut(v, 64), record.MaxDeliveries)
		}
		req.deliveries = n
	}
	switch {
	case len(body) == 0:
		return quarantineRequest{}, record.ServiceErrorf(record.CodeBadRequest, "no reason given (the body)")
	case len(body) > broker.MaxQuarantineReason:
		return quarantineRequest{}, record.ServiceErrorf(record.CodeBadRequest, "reason of %d bytes, at most %d", len(body), broker.MaxQuarantineReason)
	case !utf8.Valid(body):
		return quarantineRequest{}, record.ServiceErrorf(record.CodeBadRequest, "reason is not UTF-8 text")
	case strings.IndexFunc(string(body), unicode.IsControl) >= 0:
		return quarantineRequest{}, record.ServiceErrorf(record.CodeBadRequest, "reason has control characters")
	}
	req.reason = string(body)
	return req, nil
}

// quarantineService answers agencies' quarantine requests.
type quarantineService struct {
	js   jetstream.JetStream
	gate *rateGate // nil: every copy is admitted
	log  *slog.Logger
	lim  ratelimit.Limiter
	sub  *responder.Responder
	// recent maps copies quarantined lately (record.QuarantineMsgID) to their
	// entry's sequence, and old copies checked lately to their sequence: a
	// repeated request is answered without a read.
	mu     sync.Mutex
	recent map[string]uint64
	fifo   []string
	work   *workers
	// The record's last sequence, and when the read that gave it began: a
	// check of a copy past it is answered at once, not after waiting for a
	// verdict that will never come.
	endMu     sync.Mutex
	recordEnd uint64
	endReadAt time.Time
}

// startQuarantineService subscribes the service on nc (the bus's own
// connection).
func startQuarantineService(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, gate *rateGate, log *slog.Logger) (*quarantineService, error) {
	s := &quarantineService{js: js, gate: gate, log: log, work: newWorkers(quarantineWorkers, quarantinePerAgency), recent: map[string]uint64{}}
	var err error
	s.sub, err = responder.Listen(ctx, nc, responder.Config{
		Subject: record.QuarantineServicePrefix + "*", Queue: quarantineQueue, Handler: s.onRequest,
	})
	if err != nil {
		return nil, fmt.Errorf("start quarantine service: %w", err)
	}
	return s, nil
}

// stop stops taking requests and waits for those in hand.
func (s *quarantineService) stop() {
	s.sub.Stop()
	s.work.stop()
}

func (s *quarantineService) onRequest(m *nats.Msg) {
	token := strings.TrimPrefix(m.Subject, record.QuarantineServicePrefix)
	if !record.ReplyAllowed(m.Reply, token) {
		// The only address to answer is one the requester may not use.
		s.log.Warn("quarantine service: request dropped, reply subject outside the requester's inbox", "subject", m.Subject, "reply", record.Cut(m.Reply, 128))
		return
	}
	arrived := time.Now()
	err := s.work.runAs(token, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		answer := s.handle(ctx, m, arrived)
		if err := m.RespondMsg(answer); err != nil {
			s.log.Warn("quarantine service: answer not sent", "subject", m.Subject, "err", err)
		}
	})
	if errors.Is(err, errRequesterBusy) {
		_ = m.RespondMsg(record.ErrorAnswer(record.ServiceErrorf(record.CodeUnavailable,
			"%d requests of %s in hand already; retry later", quarantinePerAgency, record.Cut(token, 64))))
	}
}

// handle answers m, which came in at arrived.
func (s *quarantineService) handle(ctx context.Context, m *nats.Msg, arrived time.Time) *nats.Msg {
	req, err := decodeQuarantineRequest(m.Subject, m.Header, m.Data)
	if err != nil {
		return record.ErrorAnswer(err)
	}
	if req.op == record.OpCheck {
		return s.check(ctx, req, arrived)
	}
	key := record.QuarantineMsgID(req.seq, req.agency)
	a := nats.NewMsg("")
	if qseq, ok := s.seen(key); ok {
		a.Header.Set(record.HeaderQuarantineSeq, strconv.FormatUint(qseq, 10))
		a.Header.Set(record.HeaderDuplicate, "true")
		return a
	}
	if err := s.allow(req.agency); err != nil {
		return record.ErrorAnswer(err)
	}
	rec, err := s.mailboxCopy(ctx, req.agency, req.seq)
	if err != nil {
		return record.ErrorAnswer(err)
	}
	ack, err := record.WriteMailboxQuarantine(ctx, s.js, req.agency, rec.Subject, rec.Data, rec.Sequence, req.deliveries, req.reason)
	if err != nil {
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeUnavailable, "%v", err))
	}
	s.remember(key, ack.Sequence)
	a.Header.Set(record.HeaderQuarantineSeq, strconv.FormatUint(ack.Sequence, 10))
	if ack.Duplicate {
		a.Header.Set(record.HeaderDuplicate, "true")
	}
	return a
}

func (s *quarantineService) allow(agency string) error {
	if !s.lim.Allow(agency, ratelimit.Rate{PerSecond: quarantineRequestRate, Burst: quarantineRequestRate}) {
		return record.ServiceErrorf(record.CodeRateLimited, "more than %d requests per second from %s that read the record; retry later", quarantineRequestRate, agency)
	}
	return nil
}

func (s *quarantineService) seen(key string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	qseq, ok := s.recent[key]
	return qseq, ok
}

func (s *quarantineService) remember(key string, qseq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recent[key]; ok {
		return
	}
	s.recent[key] = qseq
	s.fifo = append(s.fifo, key)
	if len(s.fifo) > quarantineRecent {
		delete(s.recent, s.fifo[0])
		s.fifo = s.fifo[1:]
	}
}

// mailboxCopy reads the record message at seq and checks it is a copy in
// agency's mailbox. Another agency's copy and a missing one get the same
// answer: the requester learns nothing about the rest of the record.
func (s *quarantineService) mailboxCopy(ctx context.Context, agency string, seq uint64) (*jetstream.RawStreamMsg, error) {
	st, err := s.js.Stream(ctx, record.Stream)
	if err != nil {
		return nil, record.ServiceErrorf(record.CodeUnavailable, "open the record: %v", err)
	}
	rec, err := st.GetMsg(ctx, seq)
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, record.ServiceErrorf(record.CodeUnavailable, "read record #%d: %v", seq, err)
	}
	if err != nil || !record.InMailbox(rec.Subject, agency) {
		return nil, record.ServiceErrorf(record.CodeNotFound, "no copy #%d in the mailbox of %s", seq, agency)
	}
	return rec, nil
}

// recordEndAfter is the record's last sequence as read at or after
// arrived, when seq is past the one known: one read at a time, shared by
// the checks that arrived before it began. A copy in a requester's hands
// was recorded before its request arrived.
func (s *quarantineService) recordEndAfter(ctx context.Context, seq uint64, arrived time.Time) (uint64, error) {
	s.endMu.Lock()
	defer s.endMu.Unlock()
	if seq <= s.recordEnd || !s.endReadAt.Before(arrived) {
		return s.recordEnd, nil
	}
	start := time.Now()
	st, err := s.js.Stream(ctx, record.Stream)
	if err != nil {
		return 0, record.ServiceErrorf(record.CodeUnavailable, "open the record: %v", err)
	}
	s.recordEnd, s.endReadAt = max(s.recordEnd, st.CachedInfo().State.LastSeq), start
	return s.recordEnd, nil
}

// ownCopy checks that the record message at req.seq is a copy in the
// requester's mailbox, reading it once (then remembered), before any
// wait. counted: the read is counted as a quarantine request is, for an
// old copy, what a flood of checks about other copies costs. A copy the
// gate has not judged yet is not counted: a busy mailbox checks each new
// copy as it comes, often ahead of the gate, and must not be held to the
// request rate for it (its share of the workers bounds it).
func (s *quarantineService) ownCopy(ctx context.Context, req quarantineRequest, counted bool) error {
	key := "owner." + strconv.FormatUint(req.seq, 10) + "." + envelope.Token(req.agency)
	if _, ok := s.seen(key); ok {
		return nil
	}
	if counted {
		if err := s.allow(req.agency); err != nil {
			return err
		}
	}
	if _, err := s.mailboxCopy(ctx, req.agency, req.seq); err != nil {
		return err
	}
	s.remember(key, req.seq)
	return nil
}

// check answers whether the bus admitted the copy at req.seq of the
// requester's mailbox under the publish rate.
func (s *quarantineService) check(ctx context.Context, req quarantineRequest, arrived time.Time) *nats.Msg {
	a := nats.NewMsg("")
	if s.gate == nil {
		a.Header.Set(record.HeaderVerdict, record.VerdictAdmitted)
		return a
	}
	// A check waits for the gate's verdict holding a worker: it must not
	// wait for what the gate will not judge soon, a copy not in the
	// record when it was asked or a sequence that is no copy at all (the
	// gate follows document copies only: a status's sequence past the
	// last copy would wait until the next copy comes). A copy this
	// process's gate judged is in the record: no need to read its end or
	// the copy (with one serve, nearly every check under load).
	if req.seq > s.gate.judgedTo() {
		end, err := s.recordEndAfter(ctx, req.seq, arrived)
		if err != nil {
			return record.ErrorAnswer(err)
		}
		if req.seq > end {
			return record.ErrorAnswer(record.ServiceErrorf(record.CodeNotFound, "no copy #%d in the mailbox of %s", req.seq, req.agency))
		}
		if err := s.ownCopy(ctx, req, false); err != nil {
			return record.ErrorAnswer(err)
		}
	}
	j, err := s.gate.judgement(ctx, req.seq)
	if err != nil {
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeUnavailable, "%v", err))
	}
	if !j.known {
		// An old copy: read once who it belongs to, then remember.
		if err := s.ownCopy(ctx, req, true); err != nil {
			return record.ErrorAnswer(err)
		}
	} else if j.owner != envelope.Token(req.agency) {
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeNotFound, "no copy #%d in the mailbox of %s", req.seq, req.agency))
	}
	if j.refused {
		a.Header.Set(record.HeaderVerdict, record.VerdictRefused)
		a.Data = []byte(j.reason)
		return a
	}
	a.Header.Set(record.HeaderVerdict, record.VerdictAdmitted)
	return a
}
