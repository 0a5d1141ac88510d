package federation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/broker/responder"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Re-driving what the federation quarantined. A refused message sits in a
// federation stream (the record, the outbound, a member's stream on the
// national, the inbound or the directory's), its consumer terminated it,
// and the entry names the stream and sequence. Publishing the entry again
// would be wrong on every path: the message is not the record's, its trace
// and message id must stay as they were, and half of those streams only
// source. So the service runs the handler of that stream again on the
// message the entry points to, as it is stored, once the entry is found to
// be a faithful copy of it; on success the entry is removed.

// RetrySubject answers `docaxis quarantine retry` for the federation's
// entries (bus credentials only: agencies may not publish there, and it
// never crosses a link).
const RetrySubject = "axis.svc.federation.retry"

const headerRetryError = "Docaxis-Error"

// ErrRetry wraps why a federation entry was not re-driven.
var ErrRetry = errors.New("federation entry not re-driven")

// Retry asks the federation service of the bus c is connected to (with the
// bus's own credentials) to re-drive the federation's quarantine entry at
// seq.
func Retry(ctx context.Context, c *broker.Client, seq uint64) error {
	m, err := c.Conn().RequestWithContext(ctx, RetrySubject, []byte(strconv.FormatUint(seq, 10)))
	if errors.Is(err, nats.ErrNoResponders) {
		return fmt.Errorf("retry quarantine seq %d: %w (start it with docaxis serve --bus-id)", seq, ErrNotRunning)
	}
	if err != nil {
		return fmt.Errorf("retry quarantine seq %d: %w", seq, err)
	}
	if e := m.Header.Get(headerRetryError); e != "" {
		return fmt.Errorf("retry quarantine seq %d: %w: %s", seq, ErrRetry, m.Data)
	}
	return nil
}

// startRetry answers retry requests until the service stops.
func (s *Service) startRetry(ctx context.Context) error {
	sub, err := responder.Listen(ctx, s.nc, responder.Config{
		Subject: RetrySubject, Queue: "docaxis-federation-retry", Handler: record.FromBus(s.answerRetry),
	})
	if err != nil {
		return fmt.Errorf("start federation: %w", err)
	}
	s.retrySub = sub
	return nil
}

func (s *Service) answerRetry(m *nats.Msg) {
	a := nats.NewMsg("")
	seq, err := strconv.ParseUint(string(m.Data), 10, 64)
	if err != nil || seq == 0 {
		err = fmt.Errorf("want a quarantine sequence, got %q", cutText(string(m.Data), 32))
	} else {
		// Handlers may take as long as an attachment transfer.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 5*time.Minute)
		err = s.retry(ctx, seq)
		cancel()
	}
	if err != nil {
		a.Header.Set(headerRetryError, "1")
		a.Data = []byte(cutText(err.Error(), 2048))
	}
	_ = m.RespondMsg(a)
}

func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// retry re-drives the entry at seq of the quarantine.
func (s *Service) retry(ctx context.Context, seq uint64) error {
	qs, err := s.js.Stream(ctx, record.QuarantineStream)
	if err != nil {
		return err
	}
	entry, err := qs.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("%w: %d", broker.ErrNotQuarantined, seq)
	}
	if err != nil {
		return err
	}
	if entry.Subject != record.QuarantineSubject(quarantineAgency) {
		return fmt.Errorf("quarantine seq %d is on %s, not the federation's", seq, entry.Subject)
	}
	stream := entry.Header.Get(HeaderOriginStream)
	if member, ok := strings.CutPrefix(stream, uplinkOriginPrefix); ok {
		return s.retryFromLink(ctx, qs, entry, member, entry.Header.Get(record.HeaderOriginMsgID))
	}
	h, err := s.handlerFor(stream)
	if err != nil {
		return fmt.Errorf("quarantine seq %d: %w", seq, err)
	}
	oseq, err := strconv.ParseUint(entry.Header.Get(record.HeaderOriginSeq), 10, 64)
	if err != nil || oseq == 0 {
		return fmt.Errorf("%w: quarantine seq %d has no origin sequence in %s", broker.ErrNotInRecord, seq, stream)
	}
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	orig, err := st.GetMsg(ctx, oseq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		if member, id := s.linkEntryOfOld(entry, stream); member != "" {
			return s.retryFromLink(ctx, qs, entry, member, id)
		}
		return fmt.Errorf("%w: quarantine seq %d points to %s #%d, which is gone (past the stream's retention?)", broker.ErrNotInRecord, seq, stream, oseq)
	}
	if err != nil {
		return err
	}
	if orig.Subject != entry.Header.Get(record.HeaderOriginSubject) || !bytes.Equal(orig.Data, entry.Data) {
		if member, id := s.linkEntryOfOld(entry, stream); member != "" {
			return s.retryFromLink(ctx, qs, entry, member, id)
		}
		return fmt.Errorf("%w: quarantine seq %d differs from %s #%d on %s", broker.ErrNotInRecord, seq, stream, oseq, orig.Subject)
	}
	meta := &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: oseq}, NumDelivered: 1, Stream: stream, Timestamp: orig.Time}
	if err := h(ctx, storedMsg{orig}, meta); err != nil {
		return fmt.Errorf("%s #%d: %w", stream, oseq, err)
	}
	if err := qs.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("re-driven, but not removed from quarantine: %w", err)
	}
	s.log.Info("federation: quarantined message re-driven", "quarantine_seq", seq, "stream", stream, "seq", oseq)
	return nil
}

// linkEntryOfOld tells an entry the national wrote, before entries named
// the link (uplinkOrigin), for a copy it refused from a member: it names
// the national's own OutStream and the member's sequence, and its copy's
// trace starts with a member. It returns the member and the copy's message
// id (which such an entry did not keep, but which a copy's kind, envelope
// and addressee make), or "" for any other entry.
func (s *Service) linkEntryOfOld(entry *jetstream.RawStreamMsg, stream string) (member, msgID string) {
	if !s.National() || stream != OutStream || entry.Header.Get(record.HeaderOriginMsgID) != "" {
		return "", ""
	}
	fs, err := parseFedSubject(outPrefix, entry.Header.Get(record.HeaderOriginSubject))
	if err != nil || (fs.Kind != kindDoc && fs.Kind != kindStatus) {
		return "", ""
	}
	e, err := envelope.Peek(entry.Data)
	if err != nil {
		return "", ""
	}
	id := record.CopyMsgID(fs.Kind, e.ID, fs.A)
	hops, err := VerifyTrace(entry.Header, entry.Data, id, s.book.trustFor)
	if err != nil || len(hops) == 0 || hops[0].Bus == s.bus {
		return "", ""
	}
	return hops[0].Bus, id
}

// retryFromLink re-drives an entry of a message the national pulled from
// member over its link: the entry is the message, with the headers the
// member sent it with (its quarantine headers taken off, msgID, the
// message id it came with, put back), and the relay checks it end to end,
// trace and signature, as when it first came.
func (s *Service) retryFromLink(ctx context.Context, qs jetstream.Stream, entry *jetstream.RawStreamMsg, member, msgID string) error {
	if !s.National() {
		return fmt.Errorf("quarantine seq %d: only the national bus takes messages over a member's link", entry.Sequence)
	}
	s.mu.Lock()
	known := s.members[member]
	s.mu.Unlock()
	if !known {
		return fmt.Errorf("quarantine seq %d: bus %s is not a member of the federation", entry.Sequence, member)
	}
	h := nats.Header{}
	for k, v := range entry.Header {
		switch k {
		case record.HeaderReason, record.HeaderOriginSubject, record.HeaderOriginSeq, record.HeaderDeliveries,
			record.HeaderAgency, record.HeaderOriginStream, record.HeaderOriginMsgID, jetstream.MsgIDHeader:
			continue
		}
		h[k] = append([]string(nil), v...)
	}
	if msgID != "" {
		h.Set(jetstream.MsgIDHeader, msgID)
	}
	oseq, _ := strconv.ParseUint(entry.Header.Get(record.HeaderOriginSeq), 10, 64)
	m := &jetstream.RawStreamMsg{Subject: entry.Header.Get(record.HeaderOriginSubject), Sequence: max(oseq, 1), Header: h, Data: entry.Data, Time: entry.Time}
	meta := &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: m.Sequence}, NumDelivered: 1, Stream: OutStream, Timestamp: entry.Time}
	if err := s.relay(member)(ctx, storedMsg{m}, meta); err != nil {
		return fmt.Errorf("bus %s's %s: %w", member, m.Subject, err)
	}
	if err := qs.DeleteMsg(ctx, entry.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("re-driven, but not removed from quarantine: %w", err)
	}
	s.log.Info("federation: quarantined message re-driven", "quarantine_seq", entry.Sequence, "member", member, "subject", m.Subject)
	return nil
}

// handlerFor is the handler of the loop that reads stream on this bus.
func (s *Service) handlerFor(stream string) (handler, error) {
	switch {
	case stream == record.Stream:
		return s.forward, nil
	case s.National() && stream == OutStream:
		return s.relay(s.bus), nil
	case s.National() && strings.HasPrefix(stream, fromPrefix):
		return s.relay(strings.TrimPrefix(stream, fromPrefix)), nil
	case s.National() && stream == RelayStream, !s.National() && stream == InStream:
		return s.ingest, nil
	case !s.National() && stream == DirStream:
		return s.dirsync, nil
	}
	return nil, fmt.Errorf("no federation handler reads stream %q on this bus", stream)
}

// storedMsg hands a stored message to a handler as its consumer would;
// acknowledging it means nothing (the consumer terminated it long ago).
type storedMsg struct{ m *jetstream.RawStreamMsg }

var _ jetstream.Msg = storedMsg{}

func (s storedMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: s.m.Sequence}, NumDelivered: 1, Timestamp: s.m.Time}, nil
}
func (s storedMsg) Data() []byte                       { return s.m.Data }
func (s storedMsg) Headers() nats.Header               { return s.m.Header }
func (s storedMsg) Subject() string                    { return s.m.Subject }
func (s storedMsg) Reply() string                      { return "" }
func (s storedMsg) Ack() error                         { return nil }
func (s storedMsg) DoubleAck(context.Context) error    { return nil }
func (s storedMsg) Nak() error                         { return nil }
func (s storedMsg) NakWithDelay(time.Duration) error   { return nil }
func (s storedMsg) InProgress() error                  { return nil }
func (s storedMsg) Term() error                        { return nil }
func (s storedMsg) TermWithReason(reason string) error { return nil }
