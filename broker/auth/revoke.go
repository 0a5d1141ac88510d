package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/jwt/v2"
)

// Revocation of users of the AXIS account, the NATS way: the account JWT
// lists them and the servers refuse a revoked user. Revocations are kept
// in DIR/revocations.json and put into the account JWT whenever it is
// encoded (accountJWT). Leaf users of member buses live in their link
// accounts and are revoked there (RevokeLeaf, federation.go).

// ledger is DIR/revocations.json.
type ledger struct {
	// Revoked: user public key (or jwt.All) -> revoked at (Unix seconds):
	// JWTs of that user issued at or before are refused.
	Revoked map[string]int64 `json:"revoked,omitempty"`
}

func (a *Authority) ledgerPath() string { return filepath.Join(a.dir, "revocations.json") }

func (a *Authority) readLedger() (*ledger, error) {
	l := &ledger{Revoked: map[string]int64{}}
	b, err := os.ReadFile(a.ledgerPath())
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", a.ledgerPath(), err)
	}
	if err := json.Unmarshal(b, l); err != nil {
		return nil, fmt.Errorf("read %s: %w", a.ledgerPath(), err)
	}
	if l.Revoked == nil {
		l.Revoked = map[string]int64{}
	}
	return l, nil
}

func (a *Authority) writeLedger(l *ledger) error {
	b, _ := json.MarshalIndent(l, "", "  ")
	if err := writeAtomic(a.ledgerPath(), b); err != nil {
		return fmt.Errorf("write %s: %w", a.ledgerPath(), err)
	}
	return nil
}

// applyRevocations puts the recorded revocations into the account claims.
func (a *Authority) applyRevocations(ac *jwt.AccountClaims) error {
	l, err := a.readLedger()
	if err != nil {
		return err
	}
	for pub, at := range l.Revoked {
		if ac.Revocations == nil {
			ac.Revocations = jwt.RevocationList{}
		}
		ac.Revocations[pub] = at
	}
	return nil
}
