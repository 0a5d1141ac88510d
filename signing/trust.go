package signing

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

// Trust is the set of roots the bus trusts, the binding of imported
// certificates to agencies, and revocations. It is safe for concurrent use;
// verified chains are cached until trust changes.
type Trust struct {
	mu       sync.RWMutex
	roots    *x509.CertPool
	rootList []*x509.Certificate
	bindings map[string]string    // leaf fingerprint -> agency code
	revoked  map[string]time.Time // leaf fingerprint -> revoked at
	crls     map[string]*crlState // CA key id (KeyID) -> the CRL in force
	// CRLs kept for a root not trusted yet, by its key id (KeepCRL).
	pendingCRLs map[string][]byte
	// withdrawn roots (CA key id): chains through them verify only before.
	withdrawn map[string]time.Time
	// bindingsOf returns an agency's signed system bindings (SetBindings).
	bindingsOf func(agency string) []string
	gen        uint64
	cache      sync.Map // sha256(chain DER...) -> *chainResult
	cached     atomic.Int64
}

// maxCachedChains bounds the chain cache: failures are cached too, and a
// flood of distinct made-up chains must not grow memory without limit.
const maxCachedChains = 8192

type chainResult struct {
	gen            uint64
	notBefore, end time.Time
	err            error
	// issuer is the leaf's issuer and root the key id of the root, in the
	// verified chain: revocations are looked up under the issuer's key,
	// withdrawals under the root's.
	issuer *x509.Certificate
	root   string
}

// NewTrust returns a Trust with roots.
func NewTrust(roots ...*x509.Certificate) *Trust {
	t := &Trust{roots: x509.NewCertPool(), bindings: map[string]string{}, revoked: map[string]time.Time{},
		crls: map[string]*crlState{}, pendingCRLs: map[string][]byte{}, withdrawn: map[string]time.Time{}}
	for _, r := range roots {
		t.AddRoot(r)
	}
	return t
}

// AddRoot trusts r.
func (t *Trust) AddRoot(r *x509.Certificate) {
	if der := t.addRoot(r); der != nil {
		_, _ = t.ApplyCRLFor(KeyID(r), der) // a CRL that waited for its root
	}
}

func (t *Trust) addRoot(r *x509.Certificate) (pendingCRL []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, have := range t.rootList {
		if have.Equal(r) {
			return nil
		}
	}
	// Copy on write: verifications in flight use the pool they took without
	// the lock, so it must never change under them.
	roots := t.roots.Clone()
	roots.AddCert(r)
	t.roots = roots
	t.rootList = append(t.rootList, r)
	t.gen++
	der := t.pendingCRLs[KeyID(r)]
	delete(t.pendingCRLs, KeyID(r))
	return der
}

// Roots returns the trusted roots.
func (t *Trust) Roots() []*x509.Certificate {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]*x509.Certificate(nil), t.rootList...)
}

// Pool returns a copy of the root pool (for TLS and PDF verification).
func (t *Trust) Pool() *x509.CertPool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.roots.Clone()
}

// Bind records that leaf belongs to agency: for imported certificates that
// carry no docaxis agency URI.
func (t *Trust) Bind(agency string, leaf *x509.Certificate) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bindings[envelope.Fingerprint(leaf)] = agency
}

// Revoke marks leaf revoked from at: signatures made after at are refused,
// earlier ones still verify.
func (t *Trust) Revoke(fingerprint string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.revoked[fingerprint] = at
	t.gen++
}

// RevokedAt returns when a certificate was revoked.
func (t *Trust) RevokedAt(fingerprint string) (time.Time, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	at, ok := t.revoked[fingerprint]
	return at, ok
}

// AgencyOf returns the agency a leaf certificate belongs to: the code in its
// SAN URI, else an explicit binding, else "".
func (t *Trust) AgencyOf(leaf *x509.Certificate) string {
	if a := AgencyOf(leaf); a != "" {
		return a
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.bindings[envelope.Fingerprint(leaf)]
}

// VerifyChain checks that chain (leaf first) reaches a trusted root and that
// every certificate is valid at time at (and the root not withdrawn then).
func (t *Trust) VerifyChain(chain []*x509.Certificate, at time.Time) error {
	_, err := t.verifiedChain(chain, at)
	return err
}

// verifiedChain is VerifyChain returning what the verification found.
func (t *Trust) verifiedChain(chain []*x509.Certificate, at time.Time) (*chainResult, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: empty chain", ErrUntrusted)
	}
	t.mu.RLock()
	gen, roots := t.gen, t.roots // together: a result is about one generation
	t.mu.RUnlock()
	h := sha256.New()
	for _, c := range chain {
		h.Write(c.Raw)
	}
	key := string(h.Sum(nil))
	var r *chainResult
	if v, ok := t.cache.Load(key); ok && v.(*chainResult).gen == gen {
		r = v.(*chainResult)
	} else {
		r = t.verifyChain(chain, gen, roots, at)
		if !errors.Is(r.err, ErrExpired) {
			// Expiry depends on the time asked about; everything else about a
			// chain does not, so only those answers are cached.
			if t.cached.Add(1) > maxCachedChains {
				t.cache.Clear() // crude but bounded; the cache is only a shortcut
				t.cached.Store(1)
			}
			t.cache.Store(key, r)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := checkWindow(chain[0], r.notBefore, r.end, at); err != nil {
		return nil, err
	}
	if w, ok := t.Withdrawal(r.root); ok && !at.Before(w) {
		return nil, fmt.Errorf("%w: certificate %q chains to a CA withdrawn at %s, checked at %s", ErrRevoked,
			chain[0].Subject.CommonName, w.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	return r, nil
}

func checkWindow(leaf *x509.Certificate, nb, end, at time.Time) error {
	if at.Before(nb) || at.After(end) {
		return fmt.Errorf("%w: certificate %q valid from %s to %s, checked at %s", ErrExpired,
			leaf.Subject.CommonName, nb.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339))
	}
	return nil
}

func (t *Trust) verifyChain(chain []*x509.Certificate, gen uint64, roots *x509.CertPool, at time.Time) *chainResult {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	// Verify at a moment when every certificate given is valid, so that the
	// cached answer is about the chain; validity dates are then checked
	// against the computed window for each time asked about.
	inside := leaf.NotBefore
	for _, c := range chain {
		if c.NotBefore.After(inside) {
			inside = c.NotBefore
		}
	}
	var verified [][]*x509.Certificate
	var err, firstErr error
	for _, when := range []time.Time{inside.Add(time.Second), at} {
		verified, err = leaf.Verify(x509.VerifyOptions{
			Roots:         roots,
			Intermediates: inter,
			CurrentTime:   when,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err == nil {
			break
		}
		var ie x509.CertificateInvalidError
		if !errors.As(err, &ie) || ie.Reason != x509.Expired {
			// Not a matter of dates: the chain itself is bad.
			return &chainResult{gen: gen, err: fmt.Errorf("%w: %q: %v", ErrUntrusted, leaf.Subject.CommonName, err)}
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if err != nil {
		return &chainResult{gen: gen, err: fmt.Errorf("%w: %q: %v", ErrExpired, leaf.Subject.CommonName, firstErr)}
	}
	nb, end := leaf.NotBefore, leaf.NotAfter
	for _, c := range verified[0] {
		if c.NotBefore.After(nb) {
			nb = c.NotBefore
		}
		if c.NotAfter.Before(end) {
			end = c.NotAfter
		}
	}
	r := &chainResult{gen: gen, notBefore: nb, end: end, root: KeyID(verified[0][len(verified[0])-1])}
	if len(verified[0]) > 1 {
		r.issuer = verified[0][1]
	} else {
		r.issuer = verified[0][0] // a root used as a leaf issued itself
	}
	return r
}
