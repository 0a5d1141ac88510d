package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docaxis/docaxis/broker/bucket"
	"github.com/nats-io/nats.go/jetstream"
)

// Operator tokens sign in to the operator's page and the /v1/operator
// API. They live in a bucket of their own, keyed by their SHA-256 like
// agency tokens, and carry a prefix of their own: an agency token is
// never an operator's, nor the other way round, whatever a bucket holds.

// OperatorTokenBucket is the KV bucket of operator tokens.
const OperatorTokenBucket = "AXIS_OPERATOR_TOKENS"

const operatorTokenPrefix = "dxo_"

// OperatorInfo is what the bucket keeps about an operator token.
type OperatorInfo struct {
	// Name is the operator the token was made for (shown in the audit
	// trail of what they did).
	Name    string     `json:"name"`
	Created time.Time  `json:"created"`
	Revoked *time.Time `json:"revoked,omitempty"`
	Hash    string     `json:"-"`
}

// OperatorAuthenticator maps an operator's bearer token to their name.
type OperatorAuthenticator interface {
	// AuthenticateOperator returns the operator's name, or an error
	// wrapping ErrInvalidToken or ErrTokenRevoked.
	AuthenticateOperator(ctx context.Context, token string) (name string, err error)
}

// OperatorTokens is the operator token store on the bus.
type OperatorTokens struct {
	kv jetstream.KeyValue
}

// OpenOperatorTokens opens the operator token bucket, creating it when
// missing.
func OpenOperatorTokens(ctx context.Context, js jetstream.JetStream, cfg TokensConfig) (*OperatorTokens, error) {
	kv, err := bucket.Open(ctx, js, jetstream.KeyValueConfig{
		Bucket:      OperatorTokenBucket,
		Description: "docaxis operator tokens: SHA-256 of the token -> operator, created, revoked",
		History:     4,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("operator token bucket: %w", err)
	}
	return &OperatorTokens{kv: kv}, nil
}

// checkOperatorName accepts a short printable name (a person or a role).
func checkOperatorName(name string) error {
	if name == "" || len(name) > 64 || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("operator name %q: want 1 to 64 bytes of printable text", name)
	}
	return nil
}

// Create issues a token for operator name; it is returned once and kept
// nowhere.
func (t *OperatorTokens) Create(ctx context.Context, name string) (string, *OperatorInfo, error) {
	if err := checkOperatorName(name); err != nil {
		return "", nil, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	token := operatorTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	info := &OperatorInfo{Name: name, Created: time.Now().UTC().Truncate(time.Second), Hash: HashToken(token)}
	val, err := json.Marshal(info)
	if err != nil {
		return "", nil, err
	}
	if _, err := t.kv.Create(ctx, info.Hash, val); err != nil {
		return "", nil, fmt.Errorf("store operator token for %s: %w", name, err)
	}
	return token, info, nil
}

func (t *OperatorTokens) lookup(ctx context.Context, token string) (*OperatorInfo, error) {
	if !strings.HasPrefix(token, operatorTokenPrefix) || len(token) > 128 {
		return nil, fmt.Errorf("%w: not an operator token (they start with %s)", ErrInvalidToken, operatorTokenPrefix)
	}
	return t.get(ctx, HashToken(token))
}

func (t *OperatorTokens) get(ctx context.Context, hash string) (*OperatorInfo, error) {
	e, err := t.kv.Get(ctx, hash)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w: unknown operator token", ErrInvalidToken)
	}
	if err != nil {
		return nil, fmt.Errorf("look up operator token: %w", err)
	}
	var info OperatorInfo
	if err := json.Unmarshal(e.Value(), &info); err != nil || checkOperatorName(info.Name) != nil {
		return nil, fmt.Errorf("%w: operator token entry %s… does not decode", ErrInvalidToken, hash[:12])
	}
	info.Hash = hash
	return &info, nil
}

// AuthenticateOperator implements OperatorAuthenticator.
func (t *OperatorTokens) AuthenticateOperator(ctx context.Context, token string) (string, error) {
	info, err := t.lookup(ctx, token)
	if err != nil {
		return "", err
	}
	if info.Revoked != nil {
		return "", fmt.Errorf("%w at %s", ErrTokenRevoked, info.Revoked.Format(time.RFC3339))
	}
	return info.Name, nil
}

// Revoke revokes an operator token (again: not an error).
func (t *OperatorTokens) Revoke(ctx context.Context, token string) (*OperatorInfo, error) {
	info, err := t.lookup(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("revoke operator token: %w", err)
	}
	if info.Revoked != nil {
		return info, nil
	}
	now := time.Now().UTC().Truncate(time.Second)
	info.Revoked = &now
	val, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	if _, err := t.kv.Put(ctx, info.Hash, val); err != nil {
		return nil, fmt.Errorf("revoke operator token of %s: %w", info.Name, err)
	}
	return info, nil
}

// List returns every operator token, revoked ones included.
func (t *OperatorTokens) List(ctx context.Context) ([]*OperatorInfo, error) {
	lister, err := t.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list operator tokens: %w", err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	_ = lister.Stop()
	var out []*OperatorInfo
	for _, k := range keys {
		info, err := t.get(ctx, k)
		if errors.Is(err, ErrInvalidToken) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}
