package record

import (
	"errors"
	"fmt"
	"strings"

	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
)

// The bus's request services. Agencies and systems may not touch the
// bus's buckets or the quarantine; they ask the bus on these subjects, and
// NATS permissions let each publish only under its own token, so the token
// names the caller. Client and bus take the subjects from here.
const (
	// TrackServicePrefix: axis.svc.track.<agency>.<op>, an agency's
	// tracking, answered from its own pairs.
	TrackServicePrefix = "axis.svc.track."
	// TrackEventPrefix: axis.evt.track.<agency>, changes of an agency's
	// pairs (core NATS, at most once).
	TrackEventPrefix = "axis.evt.track."
	// QuarantineServicePrefix: axis.svc.quarantine.<agency>, quarantine a
	// copy of one's own mailbox; the rate verdict of a copy.
	QuarantineServicePrefix = "axis.svc.quarantine."
	// SystemServicePrefix: axis.svc.sys.<system actor>.<op>, a document
	// system's publishes and marker reads, checked against the directory.
	SystemServicePrefix = "axis.svc.sys."
	// RateJudgeSubject: the bus's own processes ask the one that judges
	// the publish rate (elected) for a copy's verdict. Agencies and
	// systems can neither ask nor answer there.
	RateJudgeSubject = "axis.svc.rategate.judge"
)

// SystemActorPrefix starts the actor of a document system (its identity
// where an agency code would stand): "=" cannot start an agency code.
const SystemActorPrefix = "="

// SystemActor is the actor of document system id.
func SystemActor(id string) string { return SystemActorPrefix + id }

// TrackServiceSubject is the subject of agency's tracking request op.
func TrackServiceSubject(agency, op string) string {
	return TrackServicePrefix + envelope.Token(agency) + "." + op
}

// TrackEventSubject is where the bus publishes the changes of agency's
// pairs (as sender or recipient).
func TrackEventSubject(agency string) string { return TrackEventPrefix + envelope.Token(agency) }

// QuarantineServiceSubject is where agency asks the bus to quarantine a
// copy of its mailbox.
func QuarantineServiceSubject(agency string) string {
	return QuarantineServicePrefix + envelope.Token(agency)
}

// SystemServiceSubject is where system id sends requests of kind op.
func SystemServiceSubject(id, op string) string {
	return SystemServicePrefix + envelope.Token(SystemActor(id)) + "." + op
}

// The quarantine service's protocol. Request: HeaderOp (OpQuarantine, the
// default, or OpCheck), HeaderOriginSeq (the copy's record sequence) and,
// for quarantine, HeaderDeliveries; the body is the reason. Answer:
// HeaderQuarantineSeq (the entry's sequence, with HeaderDuplicate when it
// was there already) or HeaderVerdict; or HeaderError with a code and the
// message in the body.
const (
	HeaderOp            = "Docaxis-Op"
	HeaderQuarantineSeq = "Docaxis-Quarantine-Seq"
	HeaderDuplicate     = "Docaxis-Duplicate"
	HeaderVerdict       = "Docaxis-Verdict"
	HeaderError         = "Docaxis-Error"

	OpQuarantine = "quarantine"
	OpCheck      = "check"

	VerdictAdmitted = "admitted"
	VerdictRefused  = "refused"

	// MaxDeliveries bounds the delivery count a request may state.
	MaxDeliveries = 1 << 20
)

// Error codes of the quarantine and system services' answers.
const (
	CodeBadRequest  = "bad-request"
	CodeNotFound    = "not-found"
	CodeRateLimited = "rate-limited"
	CodeUnavailable = "unavailable"
	CodeForbidden   = "forbidden"
	// CodeIDTaken: a copy's message id belongs to another message.
	CodeIDTaken = "id-taken"
)

// The system service's operations (SystemServiceSubject).
const (
	SysOpPublish   = "pub"    // publish a signed copy or status (header Docaxis-Subject)
	SysOpMarkerGet = "marker" // read a received marker (header Docaxis-Key)
	SysOpMarkerPut = "mark"   // write one
	SysOpForward   = "q"      // a quarantine or rate-check request for one of its agencies (HeaderAgency)

	// HeaderSysSubject names the record subject a system publishes on.
	HeaderSysSubject = "Docaxis-Subject"
	// HeaderSysKey names the received marker a system reads or writes.
	HeaderSysKey = "Docaxis-Key"
)

// ServiceError is a bus service's refusal: answered with its code in
// HeaderError and its message as the body.
type ServiceError struct {
	Code string
	Msg  string
}

func (e *ServiceError) Error() string { return e.Code + ": " + e.Msg }

// ServiceErrorf is a ServiceError with a formatted message.
func ServiceErrorf(code, format string, args ...any) *ServiceError {
	return &ServiceError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// ErrorAnswer is the answer to a refused request: err's code when it is a
// ServiceError, CodeUnavailable otherwise.
func ErrorAnswer(err error) *nats.Msg {
	var se *ServiceError
	if !errors.As(err, &se) {
		se = &ServiceError{Code: CodeUnavailable, Msg: err.Error()}
	}
	a := nats.NewMsg("")
	a.Header.Set(HeaderError, se.Code)
	a.Data = []byte(Cut(se.Msg, 1024))
	return a
}

// ReplyAllowed accepts a reply subject in the requester's own inbox
// (_INBOX_<token>., what agencies connect with) or the bus's (_INBOX.): an
// agency cannot have the bus answer into another agency's inbox.
func ReplyAllowed(reply, token string) bool {
	return inboxUnder(reply, "_INBOX_"+token+".") || inboxUnder(reply, BusInboxPrefix)
}

// BusInboxPrefix starts the reply subjects of the bus's own processes and
// tools (nats.go's default: they set no custom inbox prefix).
const BusInboxPrefix = "_INBOX."

// BusReply accepts the reply subject of a request from the bus's own
// processes (an inbox under BusInboxPrefix), the only requesters of the
// bus-internal subjects (RateJudgeSubject, the federation's, the audit
// chainer's). Anything else came from elsewhere: above all a consumer's
// delivery, which an agency can send to any subject of the account with a
// pull request (CONSUMER.MSG.NEXT of its own mailbox) whose reply subject
// it chooses; no permission applies to where the server delivers. Such a
// delivery always carries the consumer's ack subject ("$JS.ACK.") as reply.
func BusReply(reply string) bool { return inboxUnder(reply, BusInboxPrefix) }

// FromBus wraps the handler of a bus-internal subject: it is called only
// for requests of the bus's own processes (BusReply), and anything else is
// dropped unanswered. Every bus-internal subscription goes through it.
func FromBus(h nats.MsgHandler) nats.MsgHandler {
	return func(m *nats.Msg) {
		if BusReply(m.Reply) {
			h(m)
		}
	}
}

// Published reports whether m can be a message the bus published to
// subscribers (an event, or the server's own status such as "no
// responders"): those carry no reply subject, while a consumer's delivery
// pulled onto the subject by an agency (see BusReply) always carries one.
func Published(m *nats.Msg) bool { return m.Reply == "" }

// inboxUnder accepts a well-formed reply subject under prefix: tokens not
// empty, no wildcards or spaces, not over-long.
func inboxUnder(reply, prefix string) bool {
	rest, ok := strings.CutPrefix(reply, prefix)
	if !ok || rest == "" || len(reply) > 256 || strings.ContainsAny(reply, "*> \t\r\n") {
		return false
	}
	for _, tok := range strings.Split(rest, ".") {
		if tok == "" {
			return false
		}
	}
	return true
}

// Cut shortens s to at most n bytes of valid UTF-8, marking the cut, for
// logs and answers that quote what a requester sent.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// The tracking service's operations (TrackServiceSubject). Its answers use
// the error codes above too.
const (
	TrackOpPing     = "ping"
	TrackOpStatus   = "status"
	TrackOpTracking = "tracking"
	TrackOpSent     = "sent"
	TrackOpReceived = "received"
	TrackOpStatuses = "statuses"
	// TrackOpCopy asks whether record message Seq is the requester's copy
	// for Recipient (a publish the record answered as a duplicate).
	TrackOpCopy = "copy"
	// TrackBusy is the message of a CodeUnavailable answer that asks to
	// retry.
	TrackBusy = "tracking service busy; retry"
)
