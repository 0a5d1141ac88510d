package record

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxQuarantineReason bounds the reason of a quarantine entry, in bytes.
const MaxQuarantineReason = 2048

// FederationBox is the quarantine box of what the federation service
// refused (axis.quarantine.federation).
const FederationBox = "federation"

// Quarantine is an entry to write into the quarantine: the bytes of a
// message that could not be processed and why. The bus alone writes the
// quarantine, and every header of an entry is derived here.
type Quarantine struct {
	// Box is the agency whose box the entry goes to (QuarantineSubject),
	// or FederationBox.
	Box string
	// Data is the message's bytes, as they were taken.
	Data []byte
	// Reason says why; it is made fit for a header (control characters
	// become spaces, at most MaxQuarantineReason bytes).
	Reason string
	// OriginSubject, OriginStream and OriginSeq say where the message was
	// taken from; OriginStream is left out of the headers when empty (the
	// record).
	OriginSubject string
	OriginStream  string
	OriginSeq     uint64
	// OriginMsgID, when set, is the message id the message was taken
	// with (HeaderOriginMsgID): where no stream of this bus keeps the
	// message, the entry is all a retry has.
	OriginMsgID string
	// Deliveries is how many times it was delivered before.
	Deliveries uint64
	// MsgID is the entry's dedup id: writing the same entry again is a
	// no-op (QuarantineMsgID for the record).
	MsgID string
	// Header, when set, holds headers of the message to keep with it (a
	// copy's trace); the entry's own headers above replace any of the same
	// name, and its Nats- headers are left out.
	Header nats.Header
}

// WriteQuarantine stores q in QuarantineStream.
func WriteQuarantine(ctx context.Context, js jetstream.Publisher, q Quarantine) (*jetstream.PubAck, error) {
	if q.Box == "" || q.MsgID == "" {
		return nil, fmt.Errorf("quarantine %s #%d: no box or message id", q.OriginSubject, q.OriginSeq)
	}
	m := &nats.Msg{Subject: QuarantineSubject(q.Box), Data: q.Data, Header: nats.Header{}}
	for k, v := range q.Header {
		if !strings.HasPrefix(k, "Nats-") {
			m.Header[k] = append([]string(nil), v...)
		}
	}
	m.Header.Set(HeaderReason, CleanReason(q.Reason))
	m.Header.Set(HeaderOriginSubject, q.OriginSubject)
	m.Header.Set(HeaderOriginSeq, strconv.FormatUint(q.OriginSeq, 10))
	m.Header.Set(HeaderDeliveries, strconv.FormatUint(q.Deliveries, 10))
	m.Header.Set(HeaderAgency, q.Box)
	m.Header.Del(HeaderOriginStream)
	if q.OriginStream != "" {
		m.Header.Set(HeaderOriginStream, q.OriginStream)
	}
	m.Header.Del(HeaderOriginMsgID)
	if q.OriginMsgID != "" {
		m.Header.Set(HeaderOriginMsgID, q.OriginMsgID)
	}
	m.Header.Del(HeaderEnvelope)
	if id := EnvelopeIDOf(q.Data); id != "" {
		m.Header.Set(HeaderEnvelope, id)
	}
	m.Header.Set(jetstream.MsgIDHeader, q.MsgID)
	ack, err := js.PublishMsg(ctx, m, jetstream.WithExpectStream(QuarantineStream))
	if err != nil {
		return nil, fmt.Errorf("quarantine %s #%d for %s: %w", q.OriginSubject, q.OriginSeq, q.Box, err)
	}
	return ack, nil
}

// EnvelopeIDOf names the envelope a message claims to be, signed or not
// (for listings only: nothing is decided on it), or "".
func EnvelopeIDOf(data []byte) string {
	e, err := envelope.Peek(data)
	if err != nil {
		if e, err = envelope.DecodePayload(data); err != nil {
			return ""
		}
	}
	if !envelope.IsID(e.ID) {
		return ""
	}
	return e.ID
}

// CleanReason fits a reason into a header: control characters become
// spaces and it is cut at MaxQuarantineReason bytes on a rune boundary.
func CleanReason(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) <= MaxQuarantineReason {
		return s
	}
	cut := MaxQuarantineReason
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// InMailbox tells whether subject is the subject of a copy in agency's
// mailbox.
func InMailbox(subject, agency string) bool {
	rs, ok := ParseSubject(subject)
	return ok && rs.Kind == KindDoc && rs.To != "" && rs.From != "" && rs.To == agency && subject == DocSubject(rs.To, rs.From)
}

// WriteMailboxQuarantine stores, as the bus, the entry for the record
// message at seq (subject and data as the record holds them) in agency's
// mailbox. Every header is derived from the record; the dedup id makes
// quarantining the same copy again a no-op.
func WriteMailboxQuarantine(ctx context.Context, js jetstream.Publisher, agency, subject string, data []byte, seq, deliveries uint64, reason string) (*jetstream.PubAck, error) {
	if seq == 0 {
		return nil, fmt.Errorf("quarantine for %s: no record sequence", agency)
	}
	if !InMailbox(subject, agency) {
		return nil, fmt.Errorf("quarantine for %s: record #%d on %s is not a copy in its mailbox", agency, seq, subject)
	}
	return WriteQuarantine(ctx, js, Quarantine{
		Box: agency, Data: data, Reason: reason,
		OriginSubject: subject, OriginSeq: seq, Deliveries: deliveries,
		MsgID: QuarantineMsgID(seq, agency),
	})
}
