package audit

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/signing/jws"
)

// CheckpointContentType is the JWS "cty" of a checkpoint.
const CheckpointContentType = "application/vnd.docaxis.audit-checkpoint+json"

// Checkpoint is a signed statement of the bus: "the chain's head is Head,
// the link of stream sequence Seq, at Time". Every link up to Seq is fixed
// by it, since each link holds the hash of the one before.
type Checkpoint struct {
	Seq  uint64    `json:"seq"`
	Head string    `json:"head"`
	Time time.Time `json:"time"`
	// Reason says why it was signed: interval, shutdown or request.
	Reason string `json:"reason"`
}

// SignedCheckpoint is a checkpoint with its JWS compact serialisation
// (ES256 with the audit certificate chain in x5c).
type SignedCheckpoint struct {
	Checkpoint
	Raw   []byte              `json:"-"`
	Chain []*x509.Certificate `json:"-"`
}

// Sign returns the checkpoint signed by k.
func (k *Key) Sign(cp Checkpoint) (*SignedCheckpoint, error) {
	cp.Time = cp.Time.UTC()
	pj, err := json.Marshal(cp)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	raw, err := jws.Sign(pj, k.Signer, k.Chain, jws.ContentType(CheckpointContentType), jws.Algorithms(jws.ES256))
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return &SignedCheckpoint{Checkpoint: cp, Raw: raw, Chain: k.Chain}, nil
}

// VerifyCheckpoint checks raw's signature, that its certificate is an audit
// certificate and chains to one of roots at the checkpoint's time, and
// returns the checkpoint. Errors wrap ErrCheckpoint.
func VerifyCheckpoint(raw []byte, roots []*x509.Certificate) (*SignedCheckpoint, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCheckpoint, fmt.Sprintf(format, args...))
	}
	s, err := jws.Open(bytes.TrimSpace(raw), jws.ContentType(CheckpointContentType), jws.Algorithms(jws.ES256))
	if err != nil {
		return nil, bad("%v", err)
	}
	var cp Checkpoint
	if err := jws.DecodeJSON(s.Payload, &cp); err != nil {
		return nil, bad("payload: %v", err)
	}
	leaf, chain := s.Chain[0], s.Chain
	if !IsAuditCertificate(leaf) {
		return nil, bad("certificate %q is not a docaxis audit certificate (EKU %v, URI %s)", leaf.Subject.CommonName, OIDExtKeyUsageAudit, AuditURI)
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: cp.Time,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, bad("audit certificate %q at %s: %v", leaf.Subject.CommonName, cp.Time.Format(time.RFC3339), err)
	}
	return &SignedCheckpoint{Checkpoint: cp, Raw: raw, Chain: chain}, nil
}
