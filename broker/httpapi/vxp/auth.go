package vxp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"

	"strings"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/operations"
	"github.com/docaxis/docaxis/signing"
)

// Sign returns XroadVnpt-hash-header for a signed header: the lower-case
// hex of HMAC-SHA256 keyed with the secret's UTF-8 bytes as they are (the
// base64-looking secret is not decoded).
func Sign(secret string, signHeader []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(signHeader)
	return hex.EncodeToString(m.Sum(nil))
}

// CheckSignature reports, in constant time, whether hash (hex, any case)
// is the HMAC of signHeader under secret.
func CheckSignature(secret string, signHeader []byte, hash string) bool {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(signHeader)
	want := m.Sum(nil)
	got, err := hex.DecodeString(strings.ToLower(strings.TrimSpace(hash)))
	if err != nil || len(got) != len(want) {
		hmac.Equal(make([]byte, len(want)), want) // the same work: no early way out
		return false
	}
	return hmac.Equal(got, want)
}

// Secrets gives the shared secret of a document system.
type Secrets interface {
	// Secret returns system's secret, or an error wrapping ErrNoSecret.
	Secret(ctx context.Context, system string) (string, error)
}

// ErrNoSecret: the system has no secret (never issued, or revoked with
// the system).
var ErrNoSecret = errors.New("no shared secret")

// SecretFile is the name of a system's secret in its directory of the
// bus's home (docaxis system secret ID prints it).
const SecretFile = operations.SystemSecretFile

// SecretPath is where the bus's home keeps system id's secret.
func SecretPath(ks *signing.Keystore, id string) string {
	return operations.SystemSecretPath(ks, id)
}

// FileSecrets reads secrets from the bus's home, on every request: a
// rotated secret takes effect at once, a removed one stops working.
type FileSecrets struct{ Keystore *signing.Keystore }

// Secret implements Secrets.
func (f FileSecrets) Secret(_ context.Context, system string) (string, error) {
	// The id becomes a path: only an id of the allowed characters, never
	// a "..".
	if err := broker.CheckSystemID(system); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoSecret, err)
	}
	b, err := os.ReadFile(SecretPath(f.Keystore, system))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w for system %s", ErrNoSecret, system)
	}
	if err != nil {
		return "", fmt.Errorf("read the secret of system %s: %w", system, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%w for system %s: the file is empty", ErrNoSecret, system)
	}
	return s, nil
}

// caller is an authenticated request: the system and its signed
// parameters.
type caller struct {
	System string
	Params Params
	// Signed is the raw signed header: identical on a retry or a replay
	// of the same call (the SDK's timestamp is frozen).
	Signed []byte
}

// authFailed is the one answer to every authentication failure: which of
// unknown system, removed system, no secret or wrong signature it was is
// logged, not told to whoever tries ids.
func authFailed(system string, cause error) *Error {
	desc := fmt.Sprintf("authentication failed for system %q: unknown or removed system, or XroadVnpt-hash-header is not the HMAC-SHA256 of XroadVnpt-sign-header under its secret (docaxis system secret ID)", system)
	return &Error{Code: CodeUnauthorized, Desc: desc, Err: fmt.Errorf("%w: %w", ErrAuth, cause)}
}

// authenticate checks the request's signature as PROTOCOL.md §3 says:
// the signed JSON's systemid names the system, whose secret must give
// hash-header over the exact bytes of sign-header.
func (s *Server) authenticate(ctx context.Context, r *http.Request) (*caller, *Error) {
	raw := r.Header.Get(headerPrefix + "sign-header")
	if raw == "" {
		return nil, &Error{Code: CodeUnauthorized, Desc: "the request is not signed: no XroadVnpt-sign-header", Err: ErrAuth}
	}
	p, err := ParseSignHeader([]byte(raw))
	if err != nil {
		return nil, &Error{Code: CodeUnauthorized, Desc: err.Error(), Err: fmt.Errorf("%w: %w", ErrAuth, err)}
	}
	sys := p.Get("systemid")
	if sys == "" {
		return nil, &Error{Code: CodeUnauthorized, Desc: "XroadVnpt-sign-header names no XroadVnpt-systemid", Err: ErrAuth}
	}
	if h := r.Header.Get(headerPrefix + "systemid"); h != "" && h != sys {
		return nil, authFailed(sys, fmt.Errorf("header XroadVnpt-systemid %q differs from the signed %q", h, sys))
	}
	hash := r.Header.Get(headerPrefix + "hash-header")
	secret, serr := s.secrets.Secret(ctx, sys)
	if serr != nil {
		// Same work as a known system: the time taken tells nothing.
		var k [32]byte
		_, _ = rand.Read(k[:])
		CheckSignature(string(k[:]), []byte(raw), hash)
		if !errors.Is(serr, ErrNoSecret) {
			return nil, &Error{Code: CodeInternal, Desc: "the bus could not read the system's secret; see its log", Err: serr}
		}
		return nil, authFailed(sys, serr)
	}
	if !CheckSignature(secret, []byte(raw), hash) {
		return nil, authFailed(sys, errors.New("signature does not match"))
	}
	if _, err := s.c.LookupSystem(ctx, sys); err != nil {
		if errors.Is(err, broker.ErrUnknownSystem) {
			return nil, authFailed(sys, err)
		}
		return nil, &Error{Code: CodeInternal, Desc: "the bus could not look the system up; see its log", Err: err}
	}
	return &caller{System: sys, Params: p, Signed: []byte(raw)}, nil
}
