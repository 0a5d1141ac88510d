package signing

import (
	"fmt"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

// Verifier checks signed envelopes against a Trust.
type Verifier struct {
	Trust *Trust
	// Validate options for the envelope content (e.g. non-standard codes).
	Validate []envelope.ValidateOption
}

// VerifyOption adjusts one verification.
type VerifyOption func(*verifyOptions)

type verifyOptions struct{ at time.Time }

// At verifies as of time t instead of now (an auditor replaying history
// checks against the trust that held when the envelope was signed).
func At(t time.Time) VerifyOption { return func(o *verifyOptions) { o.at = t } }

// Verify decodes raw, checks its signature, its chain to a trusted root,
// validity dates (at the envelope's creation and at verification time),
// revocation, that the certificate belongs to the envelope's from agency,
// and the envelope's content. It returns the decoded envelope only when
// every check passed.
func (v *Verifier) Verify(raw []byte, opts ...VerifyOption) (*envelope.Signed, error) {
	s, err := envelope.Open(raw)
	if err != nil {
		return nil, err
	}
	return s, v.Check(s, opts...)
}

// Check runs the trust checks of Verify on an already opened envelope.
func (v *Verifier) Check(s *envelope.Signed, opts ...VerifyOption) error {
	o := verifyOptions{at: time.Now()}
	for _, opt := range opts {
		opt(&o)
	}
	e := s.Envelope
	leaf := s.Chain[0]
	if got := v.Trust.AgencyOf(leaf); got != e.From {
		if got == "" {
			return fmt.Errorf("%w: certificate %q binds no agency code, envelope claims %s", ErrAgencyMismatch, leaf.Subject.CommonName, e.From)
		}
		return fmt.Errorf("%w: envelope claims %s, certificate belongs to %s", ErrAgencyMismatch, e.From, got)
	}
	if err := v.Trust.VerifyChain(s.Chain, e.Created); err != nil {
		return fmt.Errorf("at signing time: %w", err)
	}
	if !o.at.Equal(e.Created) {
		// The signature must also be checkable now: a certificate that
		// expired before the envelope arrives cannot vouch for it. An
		// auditor passes At(created) to check history.
		if err := v.Trust.VerifyChain(s.Chain, o.at); err != nil {
			return err
		}
	}
	if at, ok := v.Trust.RevokedAt(envelope.Fingerprint(leaf)); ok && !e.Created.Before(at) {
		return fmt.Errorf("%w: certificate of %s revoked at %s, envelope signed at %s", ErrRevoked, e.From,
			at.UTC().Format(time.RFC3339), e.Created.UTC().Format(time.RFC3339))
	}
	if err := e.Validate(v.Validate...); err != nil {
		return err
	}
	return nil
}
