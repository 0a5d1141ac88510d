package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Revocation of credentials: the users of a member's leaf connections are
// recorded when the national issues them (RecordLeaf), so that removing
// the member revokes every one of them (RevokeLeaf) in the AXIS account's
// JWT, the NATS way: the servers refuse a revoked user and close its
// connections. Revocations are kept in DIR/revocations.json and put into
// the account JWT at every Open; PushAccount hands the new JWT to running
// servers through the system account.

// ledger is DIR/revocations.json.
type ledger struct {
	// Leaves: member bus -> public keys of the users of its leaf credentials.
	Leaves map[string][]string `json:"leaves,omitempty"`
	// Revoked: user public key -> revoked at (Unix seconds): JWTs of that
	// user issued at or before are refused.
	Revoked map[string]int64 `json:"revoked,omitempty"`
}

func (a *Authority) ledgerPath() string { return filepath.Join(a.dir, "revocations.json") }

func (a *Authority) readLedger() (*ledger, error) {
	l := &ledger{Leaves: map[string][]string{}, Revoked: map[string]int64{}}
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
	if l.Leaves == nil {
		l.Leaves = map[string][]string{}
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

// applyRevocations puts the recorded revocations into the account claims
// (Open calls it before encoding the account JWT).
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

// RecordLeaf records the user of leaf credentials issued to member (the
// file LeafCreds wrote), so that RevokeLeaf can revoke it.
func (a *Authority) RecordLeaf(member, credsPath string) error {
	pub, err := userOfCreds(credsPath)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	l, err := a.readLedger()
	if err != nil {
		return err
	}
	if !slices.Contains(l.Leaves[member], pub) {
		l.Leaves[member] = append(l.Leaves[member], pub)
	}
	return a.writeLedger(l)
}

// RevokeLeaf revokes every recorded leaf credential of member from now
// and re-encodes the account JWT; running servers refuse them once they
// have it (PushAccount). It returns the users revoked.
func (a *Authority) RevokeLeaf(member string) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, err := a.readLedger()
	if err != nil {
		return nil, err
	}
	now := time.Now().Unix()
	users := l.Leaves[member]
	for _, pub := range users {
		l.Revoked[pub] = now
	}
	if err := a.writeLedger(l); err != nil {
		return nil, err
	}
	if err := a.encodeAccount(l); err != nil {
		return nil, err
	}
	return users, nil
}

// encodeAccount re-encodes the AXIS account JWT with the revocations of l.
func (a *Authority) encodeAccount(l *ledger) error {
	ac, err := jwt.DecodeAccountClaims(a.accountJWT)
	if err != nil {
		return fmt.Errorf("decode account JWT: %w", err)
	}
	ac.Revocations = jwt.RevocationList{}
	for pub, at := range l.Revoked {
		ac.Revocations[pub] = at
	}
	tok, err := ac.Encode(a.operator)
	if err != nil {
		return fmt.Errorf("encode account JWT: %w", err)
	}
	a.accountJWT = tok
	return nil
}

// PushAccount sends the current AXIS account JWT to the servers at url
// (through the system account), so that revocations take effect without a
// restart: revoked users' connections are closed and refused.
func (a *Authority) PushAccount(ctx context.Context, url string, opts ...nats.Option) error {
	a.mu.Lock()
	accJWT := a.accountJWT
	a.mu.Unlock()
	user, err := nkeys.CreateUser()
	if err != nil {
		return err
	}
	pub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = "docaxis-system"
	uc.Expires = time.Now().Add(5 * time.Minute).Unix()
	sysPub, _ := a.system.PublicKey()
	uc.IssuerAccount = sysPub
	tok, err := uc.Encode(a.system)
	if err != nil {
		return fmt.Errorf("encode system user JWT: %w", err)
	}
	seed, _ := user.Seed()
	nc, err := nats.Connect(url, append(opts, nats.UserJWTAndSeed(tok, string(seed)), nats.Name("docaxis account update"))...)
	if err != nil {
		return fmt.Errorf("connect to %s as the system account: %w", url, err)
	}
	defer nc.Close()
	msg, err := nc.RequestWithContext(ctx, "$SYS.REQ.ACCOUNT."+a.AccountPublicKey()+".CLAIMS.UPDATE", []byte(accJWT))
	if err != nil {
		return fmt.Errorf("update the account on %s: %w", url, err)
	}
	var resp struct {
		Data *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"data"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("update the account on %s: %w", url, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("update the account on %s: %s (%d)", url, resp.Error.Description, resp.Error.Code)
	}
	return nil
}

// userOfCreds returns the user public key of a credentials file.
func userOfCreds(path string) (string, error) {
	uc, err := userClaimsOf(path)
	if err != nil {
		return "", err
	}
	return uc.Subject, nil
}
