package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
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

// issuedPath lists, one a line, the public key of every user issued into
// the credentials file at path (AgencyCreds): a file issued again replaces
// the one before, while copies handed to document systems keep working,
// and RevokeAgencyCreds must cut those off too.
func issuedPath(path string) string { return path + ".issued" }

func recordIssued(path, pub string) error {
	f, err := os.OpenFile(issuedPath(path), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("record issued credentials: %w", err)
	}
	_, err = f.WriteString(pub + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("record issued credentials: %w", err)
	}
	return nil
}

// RevokeAgencyCreds revokes from now on every user issued into the
// agency credentials file at path, the file's own and those it replaced,
// and removes the file: the agency's connections are refused and closed
// once the bus takes the revocation (serve applies the ledger within
// seconds, Links.SyncRevocations), and AgencyCreds issues new credentials
// afterwards. It returns how many users it revoked. Credentials issued by
// a version that kept no list are revoked only as the file's own.
func (a *Authority) RevokeAgencyCreds(path string) (int, error) {
	users := map[string]bool{}
	if uc, err := readUserClaims(path); err == nil {
		users[uc.Subject] = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	b, err := os.ReadFile(issuedPath(path))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("read issued credentials: %w", err)
	}
	for _, pub := range strings.Fields(string(b)) {
		if nkeys.IsValidPublicUserKey(pub) {
			users[pub] = true
		}
	}
	if len(users) == 0 {
		return 0, fmt.Errorf("revoke credentials %s: %w", path, fs.ErrNotExist)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	l, err := a.readLedger()
	if err != nil {
		return 0, err
	}
	now := time.Now().Unix()
	for pub := range users {
		l.Revoked[pub] = now
	}
	if err := a.writeLedger(l); err != nil {
		return 0, err
	}
	for _, p := range []string{path, issuedPath(path)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return len(users), fmt.Errorf("revoked, but remove %s: %w", p, err)
		}
	}
	return len(users), nil
}
