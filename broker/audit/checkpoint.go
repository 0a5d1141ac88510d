package audit

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/docaxis/docaxis/envelope"
	"math/big"
	"time"
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

type jwsHeader struct {
	Alg string   `json:"alg"`
	Typ string   `json:"typ,omitempty"`
	Cty string   `json:"cty,omitempty"`
	X5c []string `json:"x5c"`
}

// Sign returns the checkpoint signed by k.
func (k *Key) Sign(cp Checkpoint) (*SignedCheckpoint, error) {
	pub, ok := k.Signer.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve.Params().BitSize != 256 {
		return nil, fmt.Errorf("sign checkpoint: audit key is %T, want ECDSA P-256", k.Signer.Public())
	}
	cp.Time = cp.Time.UTC()
	h := jwsHeader{Alg: "ES256", Typ: "JOSE", Cty: CheckpointContentType}
	for _, c := range k.Chain {
		h.X5c = append(h.X5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	pj, err := json.Marshal(cp)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	input := base64.RawURLEncoding.EncodeToString(hj) + "." + base64.RawURLEncoding.EncodeToString(pj)
	d := sha256.Sum256([]byte(input))
	der, err := k.Signer.Sign(rand.Reader, d[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	// JWS wants r||s of 32 bytes each; crypto.Signer gives ASN.1.
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &rs); err != nil {
		return nil, fmt.Errorf("sign checkpoint: decode signature: %w", err)
	}
	sig := make([]byte, 64)
	rs.R.FillBytes(sig[:32])
	rs.S.FillBytes(sig[32:])
	raw := []byte(input + "." + base64.RawURLEncoding.EncodeToString(sig))
	return &SignedCheckpoint{Checkpoint: cp, Raw: raw, Chain: k.Chain}, nil
}

// VerifyCheckpoint checks raw's signature, that its certificate is an audit
// certificate and chains to one of roots at the checkpoint's time, and
// returns the checkpoint. Errors wrap ErrCheckpoint.
func VerifyCheckpoint(raw []byte, roots []*x509.Certificate) (*SignedCheckpoint, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrCheckpoint, fmt.Sprintf(format, args...))
	}
	parts := bytes.Split(bytes.TrimSpace(raw), []byte{'.'})
	if len(parts) != 3 {
		return nil, bad("want a JWS compact serialisation (three parts), got %d parts", len(parts))
	}
	dec := base64.RawURLEncoding.Strict()
	hj, err := dec.DecodeString(string(parts[0]))
	if err != nil {
		return nil, bad("header: %v", err)
	}
	var h jwsHeader
	if err := envelope.CheckJSONKeys(hj); err != nil {
		return nil, bad("header: %v", err)
	}
	if err := json.Unmarshal(hj, &h); err != nil {
		return nil, bad("header: %v", err)
	}
	if h.Alg != "ES256" {
		return nil, bad("alg %q, want ES256", h.Alg)
	}
	if h.Cty != CheckpointContentType {
		return nil, bad("cty %q, want %s", h.Cty, CheckpointContentType)
	}
	if len(h.X5c) == 0 || len(h.X5c) > 8 {
		return nil, bad("x5c has %d certificates", len(h.X5c))
	}
	var chain []*x509.Certificate
	for i, s := range h.X5c {
		der, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil {
			return nil, bad("x5c[%d]: %v", i, err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, bad("x5c[%d]: %v", i, err)
		}
		chain = append(chain, c)
	}
	leaf := chain[0]
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve.Params().BitSize != 256 {
		return nil, bad("certificate key is %T, want ECDSA P-256", leaf.PublicKey)
	}
	sig, err := dec.DecodeString(string(parts[2]))
	if err != nil || len(sig) != 64 {
		return nil, bad("signature is not 64 bytes of base64url")
	}
	d := sha256.Sum256(raw[:len(parts[0])+1+len(parts[1])])
	if !ecdsa.Verify(pub, d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return nil, bad("signature does not match the signed bytes")
	}
	pj, err := dec.DecodeString(string(parts[1]))
	if err != nil {
		return nil, bad("payload: %v", err)
	}
	var cp Checkpoint
	// A key twice or in two cases reads differently in other JSON readers.
	if err := envelope.CheckJSONKeys(pj, envelope.ExactFields(&cp)); err != nil {
		return nil, bad("payload: %v", err)
	}
	pd := json.NewDecoder(bytes.NewReader(pj))
	pd.DisallowUnknownFields()
	if err := pd.Decode(&cp); err != nil {
		return nil, bad("payload: %v", err)
	}
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

var b64 = base64.RawURLEncoding.Strict()

// splitJWS returns the three parts of a compact JWS, nil if it is not one.
func splitJWS(raw []byte) [][]byte {
	parts := bytes.Split(bytes.TrimSpace(raw), []byte{'.'})
	if len(parts) != 3 {
		return nil
	}
	return parts
}
