package audit

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// MaxClockSkew is how far an envelope's created time may lie after the
// time it was recorded.
//
// Deprecated: replay and verify judge as the mailbox does, with
// signing.MaxSkew after the recorded time and signing.MaxBackdate before it.
const MaxClockSkew = signing.MaxSkew

// Chain states of a replayed record.
const (
	ChainLinked   = "linked"   // its link is in the chain and matches
	ChainPending  = "pending"  // stored after the chain's head: not linked yet
	ChainMismatch = "mismatch" // its link says other bytes, subject or time
	ChainMissing  = "missing"  // the chain has a link, the record is gone
	ChainUnlinked = "unlinked" // inside the chain's span, yet no link names it
	ChainBroken   = "broken"   // its link matches, the chain before it is broken
	ChainNone     = "none"     // the bus has no audit chain
	ChainSkipped  = "skipped"  // not checked (Query.SkipChain)
)

// Record is one message of the record, re-verified.
type Record struct {
	// Seq is the message's sequence in stream AXIS.
	Seq uint64 `json:"seq"`
	// Stored is when the bus stored it.
	Stored time.Time `json:"stored"`
	// Recorded is the time the signature was judged at, as the mailbox
	// judged it: Stored, or for a copy from another bus of a federation the
	// earlier time the sender's bus recorded it (see Link.Recorded).
	Recorded time.Time `json:"recorded"`
	// Subject is the NATS subject: who the copy was for.
	Subject string `json:"subject"`
	// Type is "document" or "status", from the subject.
	Type string `json:"type"`
	// From and To come from the subject: the sending agency and the agency
	// the copy was stored for (for a status: reporter and original sender).
	From string `json:"from"`
	To   string `json:"to"`

	ID      string         `json:"id,omitempty"`
	Kind    envelope.Kind  `json:"kind,omitempty"`
	Created time.Time      `json:"created,omitzero"`
	Title   string         `json:"title,omitempty"`
	Of      string         `json:"of,omitempty"`
	State   envelope.State `json:"state,omitempty"`
	// Signer is the signing certificate's common name, SignerCert its
	// SHA-256 fingerprint.
	Signer     string `json:"signer,omitempty"`
	SignerCert string `json:"signer_cert,omitempty"`
	// Digest is the SHA-256 of the exact stored bytes.
	Digest string `json:"digest"`

	// Verified is true when the signature, the certificate chain as of the
	// signing time (which must lie within the mailbox's window around the
	// recorded time), the agency binding, the routing and the chain link
	// all hold; Reason says what failed otherwise.
	Verified bool   `json:"verified"`
	Reason   string `json:"reason,omitempty"`
	Chain    string `json:"chain"`

	Raw      []byte             `json:"-"`
	Envelope *envelope.Envelope `json:"-"`
	// Certificates is the x5c chain the record was signed with, leaf first.
	Certificates []*x509.Certificate `json:"-"`

	err error
}

// Err returns why the record did not verify (wrapping ErrSignature,
// ErrRecordMismatch, ErrMissingRecord or ErrUnlinkedRecord), nil if it did.
func (r *Record) Err() error { return r.err }

func (r *Record) fail(err error) {
	if r.err == nil {
		r.err = err
		r.Verified = false
		r.Reason = err.Error()
	}
}

// subjectFields reads a record subject as a Record's Type ("document" or
// "status"), From and To; all "" when it is not a subject of the record.
func subjectFields(subject string) (typ, from, to string) {
	s, ok := record.ParseSubject(subject)
	switch {
	case !ok:
		return "", "", ""
	case s.Kind == record.KindDoc:
		return "document", s.From, s.To
	}
	return "status", s.From, s.To
}

// newRecord fills what the stored message says; verify does the rest.
func newRecord(seq uint64, stored, recorded time.Time, subject string, raw []byte) *Record {
	r := &Record{Seq: seq, Stored: stored.UTC(), Recorded: recorded.UTC(), Subject: subject, Raw: raw, Digest: envelope.Digest(raw)}
	r.Type, r.From, r.To = subjectFields(subject)
	return r
}

// newRecordLazy leaves the digest and the subject's parsing to
// verifyRecord, which runs on the workers.
func newRecordLazy(seq uint64, stored, recorded time.Time, subject string, raw []byte) *Record {
	return &Record{Seq: seq, Stored: stored.UTC(), Recorded: recorded.UTC(), Subject: subject, Raw: raw}
}

// verifyRecord re-verifies r as the mailbox did when r was recorded (at
// r.Recorded, or r.Stored when unset): the envelope's created time must
// lie within signing.MaxBackdate before and signing.MaxSkew after it, and
// the chain, its validity dates and revocations are judged at that created
// time. It is the same check online (Reader) and offline (VerifyBundle), so
// both give the same answer.
func verifyRecord(v *signing.Verifier, r *Record) { verifyRecordCached(v, r, nil) }

// verifyRecordCached is verifyRecord opening the bytes through cache
// (nil: none).
func verifyRecordCached(v *signing.Verifier, r *Record, cache *openCache) {
	if r.Digest == "" {
		r.Digest = envelope.Digest(r.Raw)
		r.Type, r.From, r.To = subjectFields(r.Subject)
	}
	if r.Recorded.IsZero() {
		r.Recorded = r.Stored
	}
	r.Verified, r.err, r.Reason = true, nil, ""
	if r.Type == "" {
		r.fail(fmt.Errorf("%w: subject %q is not axis.doc.<to>.<from> or axis.status.<sender>.<reporter>", ErrSignature, r.Subject))
		return
	}
	s, err := cache.open(r.Digest, r.Raw)
	if err != nil {
		if e, perr := envelope.Peek(r.Raw); perr == nil {
			r.fillEnvelope(e)
		}
		r.fail(fmt.Errorf("%w: %w", ErrSignature, err))
		return
	}
	e := s.Envelope
	r.fillEnvelope(e)
	r.Signer, r.SignerCert, r.Certificates = s.Chain[0].Subject.CommonName, envelope.Fingerprint(s.Chain[0]), s.Chain
	// The mailbox's check at the recorded time: trust as it held when the
	// envelope was signed, with the created time bound to the recorded one
	// so that a revoked key cannot sign "in the past".
	if err := v.Check(s, signing.At(r.Recorded)); err != nil {
		r.fail(fmt.Errorf("%w: %w", ErrSignature, err))
		return
	}
	switch {
	case r.Type == "status" && e.Kind != envelope.KindStatus:
		r.fail(fmt.Errorf("%w: a %s envelope stored on status subject %s", ErrSignature, e.Kind, r.Subject))
	case r.Type == "document" && e.Kind == envelope.KindStatus:
		r.fail(fmt.Errorf("%w: a status envelope stored on document subject %s", ErrSignature, r.Subject))
	case e.From != r.From:
		r.fail(fmt.Errorf("%w: stored on %s as from %s, the envelope is from %s", ErrSignature, r.Subject, r.From, e.From))
	case !slices.Contains(e.To, r.To):
		r.fail(fmt.Errorf("%w: stored on %s for %s, the envelope is addressed to %s", ErrSignature, r.Subject, r.To, strings.Join(e.To, ",")))
	}
}

func (r *Record) fillEnvelope(e *envelope.Envelope) {
	r.Envelope = e
	r.ID, r.Kind, r.Created, r.Title = e.ID, e.Kind, e.Created, e.Subject
	if e.Status != nil {
		r.Of, r.State = e.Status.Of, e.Status.State
	}
}

// checkLink compares r with its link.
func (r *Record) checkLink(l *Link) {
	switch {
	case l.Digest != r.Digest:
		r.fail(fmt.Errorf("%w: SHA-256 of the stored bytes is %s, the chain link says %s", ErrRecordMismatch, r.Digest, l.Digest))
	case l.Subject != r.Subject:
		r.fail(fmt.Errorf("%w: stored on %s, the chain link says %s", ErrRecordMismatch, r.Subject, l.Subject))
	case !l.Time.Equal(r.Stored):
		r.fail(fmt.Errorf("%w: stored at %s, the chain link says %s", ErrRecordMismatch, r.Stored.Format(time.RFC3339Nano), l.Time.UTC().Format(time.RFC3339Nano)))
	default:
		r.Chain = ChainLinked
		return
	}
	r.Chain = ChainMismatch
}

// missingRecord stands for a record the chain names but the stream lost.
func missingRecord(l *Link) *Record {
	r := &Record{Seq: l.Seq, Stored: l.Time.UTC(), Recorded: l.RecordedAt().UTC(), Subject: l.Subject, Digest: l.Digest, Chain: ChainMissing}
	r.Type, r.From, r.To = subjectFields(l.Subject)
	r.fail(fmt.Errorf("%w: the audit chain links seq %d (%s, stored %s, SHA-256 %s) but the record no longer has it",
		ErrMissingRecord, l.Seq, l.Subject, l.Time.UTC().Format(time.RFC3339), l.Digest))
	return r
}

// matches reports whether a record of subject belongs to agency's traffic
// (either direction); every record matches an empty agency.
func matchesAgency(subject, agency string) bool {
	if agency == "" {
		return true
	}
	s, ok := record.ParseSubject(subject)
	return ok && (s.From == agency || s.To == agency)
}
