package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/bucket"
	"github.com/nats-io/nats.go/jetstream"
)

// TokenBucket is the KV bucket of API tokens, shared by the CLI that makes
// them and every server that checks them. Keys are the SHA-256 of the
// token: a copy of the bucket does not give anyone a usable token.
const TokenBucket = "AXIS_TOKENS"

// tokenPrefix marks docaxis tokens, so that a leaked one is recognisable
// by secret scanners.
const tokenPrefix = "dxt_"

var (
	// ErrInvalidToken: the token is malformed or was never issued.
	ErrInvalidToken = errors.New("invalid API token")
	// ErrTokenRevoked: the token was issued and later revoked.
	ErrTokenRevoked = errors.New("API token revoked")
)

// Authenticator maps a bearer token to the agency it acts for.
type Authenticator interface {
	// Authenticate returns the agency code of token, or an error wrapping
	// ErrInvalidToken or ErrTokenRevoked.
	Authenticate(ctx context.Context, token string) (agency string, err error)
}

// TokenInfo is what the bucket keeps about a token (never the token).
type TokenInfo struct {
	Agency  string     `json:"agency"`
	Created time.Time  `json:"created"`
	Revoked *time.Time `json:"revoked,omitempty"`
	// Hash is the bucket key: the SHA-256 (hex) of the token.
	Hash string `json:"-"`
}

// TokensConfig configures the token bucket when it has to be created.
type TokensConfig struct {
	Replicas int // default 1
}

// Tokens is the token store on the bus. It is safe for concurrent use.
type Tokens struct {
	kv jetstream.KeyValue
}

// OpenTokens opens the token bucket, creating it when missing.
func OpenTokens(ctx context.Context, js jetstream.JetStream, cfg TokensConfig) (*Tokens, error) {
	kv, err := bucket.Open(ctx, js, jetstream.KeyValueConfig{
		Bucket:      TokenBucket,
		Description: "docaxis HTTP API tokens: SHA-256 of the token -> agency, created, revoked",
		History:     4,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("token bucket: %w", err)
	}
	return &Tokens{kv: kv}, nil
}

// HashToken returns the bucket key of token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Create issues a new token for agency. The token itself is returned once
// and kept nowhere.
func (t *Tokens) Create(ctx context.Context, agency string) (string, *TokenInfo, error) {
	if agency == "" {
		return "", nil, errors.New("create token: no agency")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("create token for %s: %w", agency, err)
	}
	token := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	info := &TokenInfo{Agency: agency, Created: time.Now().UTC().Truncate(time.Second), Hash: HashToken(token)}
	val, err := json.Marshal(info)
	if err != nil {
		return "", nil, err
	}
	if _, err := t.kv.Create(ctx, info.Hash, val); err != nil {
		return "", nil, fmt.Errorf("store token for %s: %w", agency, err)
	}
	return token, info, nil
}

// Lookup returns what is known of token, revoked or not.
func (t *Tokens) Lookup(ctx context.Context, token string) (*TokenInfo, error) {
	if !strings.HasPrefix(token, tokenPrefix) || len(token) > 128 {
		return nil, fmt.Errorf("%w: not a docaxis token (they start with %s)", ErrInvalidToken, tokenPrefix)
	}
	return t.get(ctx, HashToken(token))
}

func (t *Tokens) get(ctx context.Context, hash string) (*TokenInfo, error) {
	e, err := t.kv.Get(ctx, hash)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: unknown token", ErrInvalidToken)
	}
	if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	var info TokenInfo
	if err := json.Unmarshal(e.Value(), &info); err != nil {
		return nil, fmt.Errorf("decode token entry %s: %w", hash[:12], err)
	}
	info.Hash = hash
	return &info, nil
}

// Authenticate implements Authenticator.
func (t *Tokens) Authenticate(ctx context.Context, token string) (string, error) {
	info, err := t.Lookup(ctx, token)
	if err != nil {
		return "", err
	}
	if info.Revoked != nil {
		return "", fmt.Errorf("%w at %s", ErrTokenRevoked, info.Revoked.Format(time.RFC3339))
	}
	return info.Agency, nil
}

// Revoke revokes token, which must belong to agency. Revoking a revoked
// token again is not an error.
func (t *Tokens) Revoke(ctx context.Context, agency, token string) error {
	info, err := t.Lookup(ctx, token)
	if err != nil {
		return fmt.Errorf("revoke token of %s: %w", agency, err)
	}
	if info.Agency != agency {
		return fmt.Errorf("revoke token of %s: %w: it belongs to another agency", agency, ErrInvalidToken)
	}
	return t.revoke(ctx, info)
}

func (t *Tokens) revoke(ctx context.Context, info *TokenInfo) error {
	if info.Revoked != nil {
		return nil
	}
	now := time.Now().UTC().Truncate(time.Second)
	info.Revoked = &now
	val, err := json.Marshal(info)
	if err != nil {
		return err
	}
	if _, err := t.kv.Put(ctx, info.Hash, val); err != nil {
		return fmt.Errorf("revoke token of %s: %w", info.Agency, err)
	}
	return nil
}

// RevokeAll revokes every live token of agency and returns how many.
func (t *Tokens) RevokeAll(ctx context.Context, agency string) (int, error) {
	list, err := t.List(ctx, agency)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, info := range list {
		if info.Revoked != nil {
			continue
		}
		if err := t.revoke(ctx, info); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// List returns the tokens issued to agency, revoked ones included.
func (t *Tokens) List(ctx context.Context, agency string) ([]*TokenInfo, error) {
	lister, err := t.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop()
	var out []*TokenInfo
	for _, k := range keys {
		info, err := t.get(ctx, k)
		if errors.Is(err, ErrInvalidToken) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		if info.Agency == agency {
			out = append(out, info)
		}
	}
	return out, nil
}
