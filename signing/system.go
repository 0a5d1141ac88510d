package signing

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing/jws"
)

// SystemURIPrefix starts the SAN URI that binds a certificate to a
// document system (one DMS installation serving many agencies):
// urn:docaxis:system:ID. A system's certificate names no agency: what it
// may sign for is in the directory's signed bindings (Binding).
const SystemURIPrefix = "urn:docaxis:system:"

// ErrNotServed: a system signed for an agency that no valid binding gives
// it at the time of signing.
var ErrNotServed = errors.New("system does not serve the agency")

// SystemOf returns the system id a certificate binds in its SAN URI, or "".
func SystemOf(c *x509.Certificate) string {
	for _, u := range c.URIs {
		if s := u.String(); strings.HasPrefix(s, SystemURIPrefix) {
			return strings.TrimPrefix(s, SystemURIPrefix)
		}
	}
	return ""
}

// IssueSystem creates a key and a certificate for document system id
// (PurposeSystem). Its Identity carries the system id in Agency until it
// signs for an agency (ForAgency).
func (ca *CA) IssueSystem(id, name string, o IssueOptions) (*Identity, error) {
	o.Name = name
	key, chain, err := IssueKey(ca, PurposeSystem, id, o.KeyType, o)
	if err != nil {
		return nil, err
	}
	return &Identity{Agency: id, Key: key, Chain: chain}, nil
}

// ForAgency returns the system identity signing for agency: Seal checks
// e.From against it; receivers check the directory's binding.
func (id *Identity) ForAgency(agency string) *Identity {
	return &Identity{Agency: agency, Key: id.Key, Chain: id.Chain}
}

// Binding says that a system signs for an agency from a time on, until a
// later binding of the same agency (to another system, or to none) takes
// over. The bus's CA signs it; it travels in the directory entry.
type Binding struct {
	Agency string    `json:"agency"`
	System string    `json:"system"` // "" ends the previous binding
	From   time.Time `json:"from"`
}

// SignBinding signs b with the CA's key: a JWS with the CA's certificate in
// x5c, readable by any JOSE tool.
func (ca *CA) SignBinding(b Binding) (string, error) {
	if b.From.IsZero() {
		b.From = time.Now().UTC()
	}
	payload, err := json.Marshal(b)
	if err != nil {
		return "", err
	}
	// The header of an envelope (its cty and kid), as bindings have always
	// had: directories hold bindings signed before.
	raw, err := jws.Sign(payload, ca.Key, []*x509.Certificate{ca.Cert}, jws.ContentType(envelope.ContentType), jws.KeyID(), jws.WithMaxSize(envelope.MaxWireSize))
	if err != nil {
		return "", fmt.Errorf("sign binding of %s to system %q: %w", b.Agency, b.System, err)
	}
	return string(raw), nil
}

// OpenBinding checks a binding's signature and that its signer is a root
// this trust holds, and returns it with the signer's key id.
func (t *Trust) OpenBinding(raw string) (Binding, string, error) {
	s, err := jws.Open([]byte(raw), jws.WithMaxSize(envelope.MaxWireSize))
	if err != nil {
		return Binding{}, "", fmt.Errorf("binding: %w", err)
	}
	if len(s.Chain) != 1 {
		return Binding{}, "", fmt.Errorf("%w: binding signed by a chain of %d certificates, want the bus's CA alone", ErrUntrusted, len(s.Chain))
	}
	signer := s.Chain[0]
	if !t.isRoot(signer) {
		return Binding{}, "", fmt.Errorf("%w: binding signed by %q, not a trusted root", ErrUntrusted, signer.Subject.CommonName)
	}
	var b Binding
	if err := jws.DecodeJSON(s.Payload, &b); err != nil {
		return Binding{}, "", fmt.Errorf("binding: %w", err)
	}
	return b, KeyID(signer), nil
}

func (t *Trust) isRoot(c *x509.Certificate) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, r := range t.rootList {
		if r.Equal(c) {
			return true
		}
	}
	return false
}

// SetBindings tells the trust where the signed bindings of an agency are
// (the directory): a system's signature for an agency verifies only when
// one of them, signed by the CA that issued the system's certificate,
// gives that system the agency at the time of signing.
func (t *Trust) SetBindings(fn func(agency string) []string) {
	t.mu.Lock()
	t.bindingsOf = fn
	t.mu.Unlock()
}

// servedBy checks that system signed for agency at `at` under a binding
// signed by the CA whose key id is caKeyID. fn, when set, reads the
// bindings instead of the trust's own source.
func (t *Trust) servedBy(fn func(string) []string, agency, system, caKeyID string, at time.Time) error {
	if fn == nil {
		t.mu.RLock()
		fn = t.bindingsOf
		t.mu.RUnlock()
	}
	if fn == nil {
		return fmt.Errorf("%w: %s (system %s): no directory bindings to check", ErrNotServed, agency, system)
	}
	var cur *Binding
	for _, raw := range fn(agency) {
		b, kid, err := t.OpenBinding(raw)
		if err != nil || kid != caKeyID || b.Agency != agency || b.From.After(at) {
			continue
		}
		if cur == nil || b.From.After(cur.From) {
			cur = &b
		}
	}
	if cur == nil || cur.System != system {
		return fmt.Errorf("%w: system %s signed for %s at %s, which no binding of the bus gave it then", ErrNotServed,
			system, agency, at.UTC().Format(time.RFC3339))
	}
	return nil
}
