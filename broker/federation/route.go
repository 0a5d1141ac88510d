package federation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// forward takes a message of the bus's record and, when it is addressed to
// an agency of another bus (a document to a remote recipient, a status to
// a remote sender), puts a copy with the bus's signed trace entry into the
// outbound stream, its attachments first. Local traffic is left alone: the
// record, the mailboxes and the tracker treat it as before.
func (s *Service) forward(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) error {
	subj, ok := record.ParseSubject(msg.Subject())
	if !ok {
		return nil
	}
	kind, a, b := subj.Kind, subj.To, subj.From
	// a is the recipient of a document, the original sender of a status.
	target, err := s.lookup(ctx, a)
	if errors.Is(err, broker.ErrUnknownAgency) {
		return nil // not routable anywhere; the recipient side deals with it
	}
	if err != nil {
		return err
	}
	if target.Bus == "" || target.Bus == s.bus {
		return nil
	}
	// Only what this bus's own agencies sent leaves from here: what came in
	// from another bus is addressed here, never forwarded again.
	if origin, err := s.lookup(ctx, b); err != nil || (origin.Bus != "" && origin.Bus != s.bus) {
		return nil
	}
	raw := msg.Data()
	v := signing.Verifier{Trust: s.book.trustFor(s.bus), Validate: []envelope.ValidateOption{envelope.AllowCodes(s.known)}}
	signed, err := v.Verify(raw, signing.At(meta.Timestamp))
	if err != nil {
		return refused("copy for %s on bus %s: %w", a, target.Bus, err)
	}
	e := signed.Envelope
	if err := checkCopy(kind, e, a, b); err != nil {
		return err
	}
	if kind == kindDoc {
		if err := s.checkHeld(ctx, e); err != nil {
			return err
		}
	}
	id := record.CopyMsgID(kind, e.ID, a)
	if got := msg.Headers().Get(jetstream.MsgIDHeader); got != "" && got != id {
		return refused("copy %s of envelope %s is recorded with message id %s", id, e.ID, got)
	}
	out := &nats.Msg{Subject: fedSubject{Dest: target.Bus, Kind: kind, A: a, B: b}.subject(outPrefix), Data: raw, Header: nats.Header{}}
	out.Header.Set(jetstream.MsgIDHeader, id)
	out.Header.Set(record.HeaderEnvelope, msg.Headers().Get(record.HeaderEnvelope))
	out.Header.Set(HeaderOriginBus, s.bus)
	if _, err := appendHop(out.Header, s.id, nil, meta.Timestamp, e.ID, id, raw); err != nil {
		return err
	}
	if err := s.publish(ctx, out, OutStream); err != nil {
		return err
	}
	// The attachments follow the envelope: the national relays a file part
	// only for an envelope it relayed, and the destination waits (a
	// bounded time) for the parts of an envelope that came first.
	if kind == kindDoc && len(e.Attachments) > 0 {
		if err := s.pushFiles(ctx, target.Bus, e); err != nil {
			return err
		}
	}
	s.stats.forwarded(target.Bus)
	return nil
}

// checkHeld refuses a document listing an attachment its sender never
// held (uploaded, sent or received; broker.Client.Holds). Listing a hash
// in a signed envelope is no proof of holding the bytes: an agency
// publishing straight on the bus could otherwise have another agency's
// bytes pushed from this bus's store to an accomplice on another bus,
// whose bus grants its recipients what a remote sender lists.
func (s *Service) checkHeld(ctx context.Context, e *envelope.Envelope) error {
	for _, att := range e.Attachments {
		ok, err := s.c.Holds(ctx, att.SHA256, e.From)
		if err != nil {
			return fmt.Errorf("envelope %s: %w", e.ID, err)
		}
		if !ok {
			return refused("envelope %s: attachment %s: %s never uploaded, sent or received those bytes (SHA-256 %s)",
				e.ID, att.Name, e.From, att.SHA256)
		}
	}
	return nil
}

// checkCopy checks that an envelope agrees with the subject it travels on.
func checkCopy(kind string, e *envelope.Envelope, a, b string) error {
	switch {
	case kind == kindDoc && e.Kind == envelope.KindStatus:
		return refused("status envelope %s on a document subject", e.ID)
	case kind == kindDoc && (e.From != b || !slices.Contains(e.To, a)):
		return refused("envelope %s from %s to %v travels as from %s to %s", e.ID, e.From, e.To, b, a)
	case kind == kindStatus && (e.Kind != envelope.KindStatus || e.Status == nil):
		return refused("envelope %s is a %s on a status subject", e.ID, e.Kind)
	case kind == kindStatus && (e.From != b || len(e.To) != 1 || e.To[0] != a):
		return refused("status %s from %s to %v travels as from %s to %s", e.ID, e.From, e.To, b, a)
	}
	return nil
}

// relay handles, on the national bus, what origin sent up (origin is the
// member whose outbound stream the message was taken from, or the national
// itself): it checks the copy end to end and re-publishes it for its
// destination bus with the national's trace entry, naming the origin in
// the subject; it passes on a file part only for an attachment of an
// envelope it relayed, at its place in it (the destination checks the
// content against the signed manifest); directory announcements update the
// national directory.
func (s *Service) relay(origin string) handler {
	return func(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) error {
		fs, err := parseFedSubject(outPrefix, msg.Subject())
		if err != nil {
			return err
		}
		if fs.Dest == origin && origin != s.bus {
			return refused("bus %s sent a message addressed to itself", origin)
		}
		switch fs.Kind {
		case kindDir:
			if origin == s.bus {
				return nil // the national's directory is the source
			}
			return s.announced(ctx, origin, fs, msg)
		case kindFile:
			// Its envelope was relayed, so its destination is known.
			if err := s.checkPart(ctx, origin, fs, msg, meta); err != nil {
				return err
			}
			// Counted in its origin's share, but not held back: its
			// envelope went ahead and waits for it on the destination.
			fs.Origin = origin
			out := &nats.Msg{Subject: fs.subject(relayPrefix), Data: msg.Data(), Header: copyHeader(msg.Headers())}
			return s.publishRelay(ctx, origin, out)
		}
		gate := s.gate(origin)
		// An envelope handed out again later: its parts, which follow it,
		// wait for it.
		handBack := func(err error) error {
			if !errors.Is(err, ErrRefused) && fs.Kind == kindDoc {
				if e, perr := envelope.Peek(msg.Data()); perr == nil && len(e.Attachments) > 0 {
					gate.wait(e.ID)
				}
			}
			return err
		}
		if err := s.relayRoom(origin, len(msg.Data())); err != nil {
			return handBack(err)
		}
		signed, hops, _, err := s.verifyCopy(ctx, fs, msg, origin, "")
		if err != nil {
			return handBack(err)
		}
		if fs.Kind == kindDoc {
			if err := s.expectParts(ctx, origin, fs.Dest, signed.Envelope); err != nil {
				return err
			}
			gate.done(signed.Envelope.ID)
		}
		fs.Origin = origin
		out := &nats.Msg{Subject: fs.subject(relayPrefix), Data: msg.Data(), Header: copyHeader(msg.Headers())}
		if hops[len(hops)-1].Bus != s.bus {
			id := out.Header.Get(jetstream.MsgIDHeader)
			if _, err := appendHop(out.Header, s.id, hops, time.Now(), signed.Envelope.ID, id, msg.Data()); err != nil {
				return err
			}
		}
		if err := s.publishRelay(ctx, origin, out); err != nil {
			return err
		}
		s.stats.relayed(origin, fs.Dest)
		return nil
	}
}

// publishRelay stores m in the relay, counting it in origin's share unless
// it is there already (a message handed out again after it was stored).
func (s *Service) publishRelay(ctx context.Context, origin string, m *nats.Msg) error {
	ack, err := s.js.PublishMsg(ctx, m, jetstream.WithExpectStream(RelayStream))
	if err != nil {
		return fmt.Errorf("store %s in %s: %w", m.Subject, RelayStream, err)
	}
	if !ack.Duplicate {
		s.relayedFrom(origin, len(m.Data))
	}
	return nil
}

// copyHeader copies the headers that travel on, leaving out those the
// servers set (the sourcing header) and keeping the message id.
func copyHeader(h nats.Header) nats.Header {
	out := nats.Header{}
	for k, v := range h {
		if strings.HasPrefix(k, "Nats-") && k != jetstream.MsgIDHeader {
			continue
		}
		out[k] = append([]string(nil), v...)
	}
	return out
}

// ingest takes a copy addressed to an agency of this bus from the inbound
// stream, checks it end to end, makes sure its attachments are in the
// bus's store, and stores it in the record with the bus's own trace entry:
// from there the recipient's mailbox, the tracker and the audit chain see
// it as any other. A copy whose attachment has not come in completely
// AttachmentWait after it arrived is quarantined with the reason.
func (s *Service) ingest(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) error {
	fs, err := parseFedSubject(relayPrefix, msg.Subject())
	if err != nil {
		return err
	}
	if fs.Dest != s.bus {
		return refused("message for bus %s arrived at bus %s", fs.Dest, s.bus)
	}
	switch fs.Kind {
	case kindFile:
		return nil // read when the envelope listing it is taken in
	case kindDoc, kindStatus:
	default:
		return refused("unexpected %s message from the national bus", fs.Kind)
	}
	signed, hops, recorded, err := s.verifyCopy(ctx, fs, msg, fs.Origin, s.cfg.National)
	if err != nil {
		return err
	}
	e := signed.Envelope
	if fs.Kind == kindDoc {
		if err := s.fetchFiles(ctx, fs.Origin, e); err != nil {
			if errors.Is(err, errMissingChunks) {
				return s.waitForParts(meta, err)
			}
			return err
		}
	}
	subject := record.Subject{Kind: fs.Kind, To: fs.A, From: fs.B}.String()
	out := &nats.Msg{Subject: subject, Data: msg.Data(), Header: nats.Header{}}
	id := msg.Headers().Get(jetstream.MsgIDHeader)
	out.Header.Set(jetstream.MsgIDHeader, id)
	out.Header.Set(record.HeaderEnvelope, msg.Headers().Get(record.HeaderEnvelope))
	out.Header.Set(HeaderOriginBus, hops[0].Bus)
	// Recipients judge the signature at the time this bus established the
	// origin recorded it (recordedTime), not at a late arrival here.
	out.Header.Set(record.HeaderRecorded, recorded.UTC().Format(time.RFC3339Nano))
	for _, jws := range msg.Headers().Values(HeaderTrace) {
		out.Header.Add(HeaderTrace, jws)
	}
	if _, err := appendHop(out.Header, s.id, hops, time.Now(), e.ID, id, msg.Data()); err != nil {
		return err
	}
	// The record deduplicates ids across the whole stream: a local
	// agency's message may hold the copy's id, and then the copy was not
	// stored and must not pass for delivered.
	if _, err := s.c.StoreCopy(ctx, out); errors.Is(err, broker.ErrIDTaken) {
		return refused("copy %s of envelope %s: %w", id, e.ID, err)
	} else if err != nil {
		return err
	}
	s.stats.ingested(hops[0].Bus)
	return nil
}

// waitForParts hands a copy whose attachment is not complete out again
// soon, until AttachmentWait after it, or the last of its parts that came,
// arrived on this bus: then it is refused (quarantined) with the reason,
// and frees its place.
func (s *Service) waitForParts(meta *jetstream.MsgMetadata, cause error) error {
	since := meta.Timestamp
	var coming *partsComing
	if errors.As(cause, &coming) && coming.last.After(since) {
		since = coming.last
	}
	if time.Since(since) >= s.cfg.AttachmentWait {
		return refused("%w: did not arrive within %s", cause, s.cfg.AttachmentWait)
	}
	return &retryAfter{d: partRetry(meta.NumDelivered), err: cause}
}

// partRetry spaces the looks for attachment parts that have not come: they
// usually follow the envelope closely.
func partRetry(attempt uint64) time.Duration {
	return min(250*time.Millisecond<<min(attempt, 5), 5*time.Second)
}

// verifyCopy checks a document or status copy end to end: the envelope's
// signature and chain to the CA of the sender's bus, at the time the
// sender's bus recorded it as far as this bus believes it (recordedTime,
// returned); every trace entry; that the first entry is by the bus the
// directory says serves the sender (and, when origin is set, by the bus
// the message came from); that the last entry is by lastBus when set; that
// the envelope agrees with the subject; and that the destination bus
// serves the addressee. Errors that may pass (an agency or bus not in the
// directory yet) are returned as they are; the rest wrap ErrRefused.
func (s *Service) verifyCopy(ctx context.Context, fs fedSubject, msg jetstream.Msg, origin, lastBus string) (*envelope.Signed, []Hop, time.Time, error) {
	raw := msg.Data()
	signed, err := envelope.Open(raw)
	if err != nil {
		return nil, nil, time.Time{}, refused("%w", err)
	}
	e := signed.Envelope
	if err := checkCopy(fs.Kind, e, fs.A, fs.B); err != nil {
		return nil, nil, time.Time{}, err
	}
	id := record.CopyMsgID(fs.Kind, e.ID, fs.A)
	if got := msg.Headers().Get(jetstream.MsgIDHeader); got != id {
		return nil, nil, time.Time{}, refused("copy %s of envelope %s travels with message id %q", id, e.ID, got)
	}
	hops, err := VerifyTrace(msg.Headers(), raw, id, s.book.trustFor)
	if errors.Is(err, ErrUnknownBus) {
		return nil, nil, time.Time{}, err
	}
	if err != nil {
		return nil, nil, time.Time{}, refused("envelope %s: %w", e.ID, err)
	}
	if len(hops) == 0 {
		return nil, nil, time.Time{}, refused("envelope %s: %w: no trace entry", e.ID, ErrTrace)
	}
	first := hops[0].Bus
	if origin != "" && first != origin {
		return nil, nil, time.Time{}, refused("envelope %s: %w: first trace entry by bus %s, the message came from bus %s", e.ID, ErrSpoofed, first, origin)
	}
	if lastBus != "" && hops[len(hops)-1].Bus != lastBus {
		return nil, nil, time.Time{}, refused("envelope %s: %w: last trace entry by bus %s, not the national bus %s", e.ID, ErrTrace, hops[len(hops)-1].Bus, lastBus)
	}
	sender, err := s.lookup(ctx, e.From)
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("envelope %s: sender: %w", e.ID, err)
	}
	if sender.Bus != first {
		return nil, nil, time.Time{}, refused("envelope %s: %w: %s is served by bus %q, the envelope entered the federation at bus %s", e.ID, ErrSpoofed, e.From, sender.Bus, first)
	}
	addressee, err := s.lookup(ctx, fs.A)
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("envelope %s: addressee: %w", e.ID, err)
	}
	if addressee.Bus != fs.Dest {
		return nil, nil, time.Time{}, refused("envelope %s: misrouted: %s is served by bus %q, not %s", e.ID, fs.A, addressee.Bus, fs.Dest)
	}
	t := s.book.trustFor(first)
	if t == nil {
		return nil, nil, time.Time{}, fmt.Errorf("envelope %s: %w %q", e.ID, ErrUnknownBus, first)
	}
	recorded := recordedTime(hops, s.cfg.National, time.Now(), s.cfg.MaxLinkOutage)
	v := signing.Verifier{Trust: t, Validate: []envelope.ValidateOption{envelope.AllowCodes(s.known)}}
	if err := v.Check(signed, signing.At(recorded)); err != nil {
		return nil, nil, time.Time{}, refused("envelope %s from %s (bus %s), judged as recorded at %s: %w", e.ID, e.From, first, recorded.UTC().Format(time.RFC3339), err)
	}
	return signed, hops, recorded, nil
}
