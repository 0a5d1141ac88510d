package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/broker/responder"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A document system reaches the record through the bus: its credentials
// name no agency (which agencies it serves changes with the directory),
// so the bus checks each request against the directory and publishes or
// reads for it. Requests go to axis.svc.sys.<actor token>.<op>, where the
// actor token is the system's (SystemActor) and only that system's
// credentials may publish there.
const (
	sysSvcQueue = "docaxis-sys"

	// sysSvcWorkers bounds the requests handled at once, sysSvcPerSystem
	// those of one system (a forwarded check may wait for the rate gate):
	// beyond, the answer is "unavailable, retry".
	sysSvcWorkers   = 64
	sysSvcPerSystem = 32
)

type sysService struct {
	c    *broker.Client
	log  *slog.Logger
	sub  *responder.Responder
	work *workers
}

func startSystemService(ctx context.Context, c *broker.Client, log *slog.Logger) (*sysService, error) {
	s := &sysService{c: c, log: log, work: newWorkers(sysSvcWorkers, sysSvcPerSystem)}
	var err error
	if s.sub, err = responder.Listen(ctx, c.Conn(), responder.Config{
		Subject: record.SystemServicePrefix + "*.*", Queue: sysSvcQueue, Handler: s.onRequest,
	}); err != nil {
		return nil, fmt.Errorf("start system service: %w", err)
	}
	return s, nil
}

func (s *sysService) stop() {
	s.sub.Stop()
	s.work.stop()
}

func (s *sysService) onRequest(m *nats.Msg) {
	rest := strings.TrimPrefix(m.Subject, record.SystemServicePrefix)
	token, _, _ := strings.Cut(rest, ".")
	if !record.ReplyAllowed(m.Reply, token) {
		s.log.Warn("system service: request dropped, reply subject outside the requester's inbox", "subject", record.Cut(m.Subject, 128), "reply", record.Cut(m.Reply, 128))
		return
	}
	err := s.work.runAs(token, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := m.RespondMsg(s.handle(ctx, m)); err != nil {
			s.log.Warn("system service: answer not sent", "subject", m.Subject, "err", err)
		}
	})
	if errors.Is(err, errRequesterBusy) {
		_ = m.RespondMsg(record.ErrorAnswer(record.ServiceErrorf(record.CodeUnavailable,
			"%d requests of %s in hand already; retry later", sysSvcPerSystem, record.Cut(token, 64))))
	}
}

// sysRequest is a decoded request.
type sysRequest struct {
	system string
	op     string
}

func decodeSysSubject(subject string) (sysRequest, error) {
	rest, ok := strings.CutPrefix(subject, record.SystemServicePrefix)
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 2 {
		return sysRequest{}, record.ServiceErrorf(record.CodeBadRequest, "subject %q: want %s<system>.<op>", record.Cut(subject, 128), record.SystemServicePrefix)
	}
	id := broker.SystemOfActor(envelope.CodeFromToken(parts[0]))
	if id == "" || broker.CheckSystemID(id) != nil || envelope.Token(broker.SystemActor(id)) != parts[0] {
		return sysRequest{}, record.ServiceErrorf(record.CodeBadRequest, "subject %q: %q is not a system token", record.Cut(subject, 128), parts[0])
	}
	switch parts[1] {
	case record.SysOpPublish, record.SysOpMarkerGet, record.SysOpMarkerPut, record.SysOpForward:
	default:
		return sysRequest{}, record.ServiceErrorf(record.CodeBadRequest, "unknown operation %q", record.Cut(parts[1], 32))
	}
	return sysRequest{system: id, op: parts[1]}, nil
}

func (s *sysService) handle(ctx context.Context, m *nats.Msg) *nats.Msg {
	req, err := decodeSysSubject(m.Subject)
	if err != nil {
		return record.ErrorAnswer(err)
	}
	if _, err := s.c.LookupSystem(ctx, req.system); err != nil {
		return record.ErrorAnswer(refusalOr(broker.DirectoryRead(err, broker.ErrUnknownSystem)))
	}
	switch req.op {
	case record.SysOpPublish:
		return s.publish(ctx, req, m)
	case record.SysOpForward:
		return s.forward(ctx, req, m)
	default:
		return s.marker(ctx, req, m)
	}
}

// serves checks that system serves agency now and that the agency is in
// the directory: the bus's own view, read from the bucket.
func (s *sysService) serves(ctx context.Context, system, agency string) (*broker.Agency, error) {
	a, err := s.c.ReadAgency(ctx, agency)
	if err := broker.Served(a, err, system, agency); err != nil {
		return nil, refusalOr(err)
	}
	return a, nil
}

// refusalOr answers a system the directory does not let act
// (broker.Served, broker.DirectoryRead): a refusal when the directory says
// no, "unavailable" when it could not be read now (a failover), which the
// system's client asks again through rather than taking for a refusal.
func refusalOr(err error) error {
	if errors.Is(err, failover.ErrUnavailable) {
		return record.ServiceErrorf(record.CodeUnavailable, "the directory cannot be read now: %v", err)
	}
	return record.ServiceErrorf(record.CodeForbidden, "%v", err)
}

// publish checks a copy or status the system sends for one of its
// agencies and publishes it to the record.
func (s *sysService) publish(ctx context.Context, req sysRequest, m *nats.Msg) *nats.Msg {
	subject := m.Header.Get(record.HeaderSysSubject)
	msgID := m.Header.Get(jetstream.MsgIDHeader)
	rs, ok := record.ParseSubject(subject)
	kind, to, from := rs.Kind, rs.To, rs.From
	if !ok || (kind != record.KindDoc && kind != record.KindStatus) || envelope.CheckNonStandardCode(to) != nil || envelope.CheckNonStandardCode(from) != nil {
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeBadRequest, "subject %q: want an envelope or status subject", record.Cut(subject, 128)))
	}
	if msgID == "" || len(msgID) > 128 {
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeBadRequest, "message id %q: want the envelope's", record.Cut(msgID, 140)))
	}
	if _, err := s.serves(ctx, req.system, from); err != nil {
		return record.ErrorAnswer(err)
	}
	sg, err := s.c.VerifyFresh(ctx, m.Data)
	if err != nil {
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeForbidden, "%v", err))
	}
	e := sg.Envelope
	switch {
	case e.From != from:
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeForbidden, "published as %s, envelope says from %s", from, e.From))
	case kind == record.KindDoc && (e.Kind == envelope.KindStatus || !slices.Contains(e.To, to) || msgID != e.ID+"."+envelope.Token(to)):
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeBadRequest, "copy for %s does not match envelope %s (to %v)", to, e.ID, e.To))
	case kind == record.KindStatus && (e.Kind != envelope.KindStatus || len(e.To) != 1 || e.To[0] != to || msgID != e.ID):
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeBadRequest, "status for %s does not match envelope %s", to, e.ID))
	}
	if kind == record.KindDoc {
		rcpt, err := s.c.LookupAgency(ctx, to)
		if err != nil {
			return record.ErrorAnswer(record.ServiceErrorf(record.CodeNotFound, "%v", err))
		}
		if err := rcpt.CheckRoutable(); err != nil {
			return record.ErrorAnswer(record.ServiceErrorf(record.CodeForbidden, "%v", err))
		}
		// A copy the recipient holds already is not stored again, also
		// past the record's dedup window (broker's storedCopies).
		if record.MayOutliveDedup(e.Created, time.Now()) {
			if t, err := s.c.Tracking(ctx, e.ID, to); err == nil && t.Seq > 0 && t.Sender == from {
				a := nats.NewMsg("")
				a.Data, _ = json.Marshal(jetstream.PubAck{Stream: record.Stream, Sequence: t.Seq, Duplicate: true})
				return a
			} else if err != nil && !errors.Is(err, broker.ErrNotFound) {
				return record.ErrorAnswer(record.ServiceErrorf(record.CodeUnavailable, "check the copies of %s stored before: %v", e.ID, err))
			}
		}
	}
	out := &nats.Msg{Subject: subject, Data: m.Data, Header: nats.Header{}}
	out.Header.Set(jetstream.MsgIDHeader, msgID)
	if kind == record.KindDoc {
		out.Header.Set(record.HeaderEnvelope, e.ID)
	} else if e.Status != nil {
		out.Header.Set(record.HeaderEnvelope, e.Status.Of)
	}
	// Another agency's message may have taken the copy's id first.
	ack, err := s.c.StoreCopy(ctx, out)
	if errors.Is(err, broker.ErrIDTaken) {
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeIDTaken, "%v", err))
	}
	if err != nil {
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeUnavailable, "publish %s: %v", subject, err))
	}
	a := nats.NewMsg("")
	a.Data, _ = json.Marshal(ack)
	return a
}

// marker reads or writes the received marker of one of the system's
// agencies (key <agency token>.<envelope id>).
func (s *sysService) marker(ctx context.Context, req sysRequest, m *nats.Msg) *nats.Msg {
	key := m.Header.Get(record.HeaderSysKey)
	token, id, ok := strings.Cut(key, ".")
	if !ok || !record.ValidKey(key) || strings.Contains(id, ".") || len(key) > 200 {
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeBadRequest, "marker key %q: want <agency token>.<envelope id>", record.Cut(key, 128)))
	}
	if _, err := s.serves(ctx, req.system, envelope.CodeFromToken(token)); err != nil {
		return record.ErrorAnswer(err)
	}
	a := nats.NewMsg("")
	if req.op == record.SysOpMarkerGet {
		e, err := s.c.ReceivedMarkers().Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return record.ErrorAnswer(record.ServiceErrorf(record.CodeNotFound, "no marker %s", key))
		}
		if err != nil {
			return record.ErrorAnswer(record.ServiceErrorf(record.CodeUnavailable, "%v", err))
		}
		a.Data = e.Value()
		return a
	}
	if len(m.Data) > 64<<10 {
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeBadRequest, "marker of %d bytes, at most 64 KiB", len(m.Data)))
	}
	if _, err := s.c.ReceivedMarkers().Put(ctx, key, m.Data); err != nil {
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeUnavailable, "%v", err))
	}
	return a
}

// forward passes a quarantine-service request about one of the system's
// agencies on, as the bus: the service then checks the copy is in that
// agency's mailbox, as it does for the agency itself.
func (s *sysService) forward(ctx context.Context, req sysRequest, m *nats.Msg) *nats.Msg {
	agency := m.Header.Get(record.HeaderAgency)
	if envelope.CheckNonStandardCode(agency) != nil {
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeBadRequest, "agency %q: want one of the system's agency codes", record.Cut(agency, 64)))
	}
	if _, err := s.serves(ctx, req.system, agency); err != nil {
		return record.ErrorAnswer(err)
	}
	fwd := nats.NewMsg(record.QuarantineServiceSubject(agency))
	for k, v := range m.Header {
		if k != record.HeaderAgency {
			fwd.Header[k] = v
		}
	}
	fwd.Data = m.Data
	a, err := s.c.Conn().RequestMsgWithContext(ctx, fwd)
	if err != nil {
		return record.ErrorAnswer(record.ServiceErrorf(record.CodeUnavailable, "%v", err))
	}
	return a
}
