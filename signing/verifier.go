package signing

import (
	"errors"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

// Verifier checks signed envelopes against a Trust.
type Verifier struct {
	Trust *Trust
	// Validate options for the envelope content (e.g. non-standard codes).
	Validate []envelope.ValidateOption
	// Bindings returns an agency's signed system bindings as this
	// verifier's directory holds them. Without it the Trust's (SetBindings)
	// are used: a Trust shared by several clients answers with whichever
	// directory set it last, which may be an agency's stale view.
	Bindings func(agency string) []string
}

// VerifyOption adjusts one verification.
type VerifyOption func(*verifyOptions)

type verifyOptions struct{ at time.Time }

// Limits on the creation time an envelope claims, relative to when it was
// recorded: a key revoked or expired cannot sign "in the past" to slip
// under its revocation or expiry by more than MaxBackdate.
const (
	MaxBackdate = 24 * time.Hour
	MaxSkew     = 10 * time.Minute
)

// At verifies an envelope as recorded at time t (the stream timestamp of
// the message) instead of now: an auditor replaying history, or a mailbox
// reading a message stored a while ago.
func At(t time.Time) VerifyOption { return func(o *verifyOptions) { o.at = t } }

// Verify decodes raw, checks its signature, its chain to a trusted root,
// validity dates and revocation at the time the envelope was signed (its
// created time, which must be close to when it was recorded), that the certificate belongs to the envelope's from agency,
// and the envelope's content. It returns the decoded envelope only when
// every check passed.
func (v *Verifier) Verify(raw []byte, opts ...VerifyOption) (*envelope.Signed, error) {
	s, err := envelope.Open(raw)
	if err != nil {
		return nil, err
	}
	if err := v.Check(s, opts...); err != nil {
		return nil, err // never hand out what did not verify
	}
	return s, nil
}

// Check runs the trust checks of Verify on an already opened envelope.
func (v *Verifier) Check(s *envelope.Signed, opts ...VerifyOption) error {
	o := verifyOptions{at: time.Now()}
	for _, opt := range opts {
		opt(&o)
	}
	if s == nil || s.Envelope == nil || len(s.Chain) == 0 {
		return errors.New("verify: no opened envelope with a certificate chain")
	}
	e := s.Envelope
	leaf := s.Chain[0]
	if e.Created.After(o.at.Add(MaxSkew)) {
		return fmt.Errorf("%w: envelope claims creation at %s, after it was recorded (%s)", envelope.ErrInvalid,
			e.Created.UTC().Format(time.RFC3339), o.at.UTC().Format(time.RFC3339))
	}
	if e.Created.Before(o.at.Add(-MaxBackdate)) {
		return fmt.Errorf("%w: envelope claims creation at %s, more than %s before it was recorded (%s)", envelope.ErrInvalid,
			e.Created.UTC().Format(time.RFC3339), MaxBackdate, o.at.UTC().Format(time.RFC3339))
	}
	// Expiry and revocation are judged at signing time: what was signed
	// while the certificate was good stays valid afterwards.
	chain, err := v.Trust.verifiedChain(s.Chain, e.Created)
	if err != nil {
		return fmt.Errorf("at signing time: %w", err)
	}
	// The agency after the chain: what an untrusted certificate says about
	// its agency means nothing, and "untrusted" is the reason to report.
	if sys := SystemOf(leaf); sys != "" && AgencyOf(leaf) == "" {
		// A document system signs for the agencies it serves: the
		// directory's binding, signed by the CA that issued the system's
		// certificate, must give it e.From when it signed.
		if err := v.Trust.servedBy(v.Bindings, e.From, sys, KeyID(chain.issuer), e.Created); err != nil {
			return err
		}
	} else if got := v.Trust.AgencyOf(leaf); got != e.From {
		if got == "" {
			return fmt.Errorf("%w: certificate %q binds no agency code, envelope claims %s", ErrAgencyMismatch, leaf.Subject.CommonName, e.From)
		}
		return fmt.Errorf("%w: envelope claims %s, certificate belongs to %s", ErrAgencyMismatch, e.From, got)
	}
	if at, ok := v.Trust.revokedAt(leaf, chain.issuer); ok && !e.Created.Before(at) {
		return fmt.Errorf("%w: certificate of %s revoked at %s, envelope signed at %s", ErrRevoked, e.From,
			at.UTC().Format(time.RFC3339), e.Created.UTC().Format(time.RFC3339))
	}
	if err := e.Validate(v.Validate...); err != nil {
		return err
	}
	return nil
}
