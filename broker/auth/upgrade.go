package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
)

// permissionsVersion is the generation of the permissions this version
// puts into the users it issues. A user JWT carries its permissions, so
// credentials issued by an earlier version keep that version's (wider)
// permissions until they are revoked: version 2 took from agencies the
// stream and consumer info of the record, the tracking bucket and the
// received markers, consumer creation and deletion, and writing the
// quarantine.
const permissionsVersion = 2

func (a *Authority) permissionsPath() string { return filepath.Join(a.dir, "permissions-version") }

func (a *Authority) markPermissions() error {
	if err := writeAtomic(a.permissionsPath(), []byte(strconv.Itoa(permissionsVersion)+"\n")); err != nil {
		return fmt.Errorf("write %s: %w", a.permissionsPath(), err)
	}
	return nil
}

// Outdated reports whether credentials were issued here under the
// permissions of an earlier version.
func (a *Authority) Outdated() (bool, error) {
	b, err := os.ReadFile(a.permissionsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("read %s: %w", a.permissionsPath(), err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return false, fmt.Errorf("read %s: %w", a.permissionsPath(), err)
	}
	return v < permissionsVersion, nil
}

// RevokeOutdated revokes every user of the AXIS account issued until now
// (the account JWT's revocation of all users issued at or before a time),
// so that no credentials with an earlier version's permissions get in, and
// records that this version's are in force. The caller re-issues the
// credentials it keeps (AdminCreds, AgencyCreds). It returns once a user
// issued from now on is newer than the revocation.
func (a *Authority) RevokeOutdated() error {
	a.mu.Lock()
	l, err := a.readLedger()
	if err != nil {
		a.mu.Unlock()
		return err
	}
	now := time.Now().Unix()
	l.Revoked[jwt.All] = now
	if err := a.writeLedger(l); err != nil {
		a.mu.Unlock()
		return err
	}
	if err := os.Remove(filepath.Join(a.dir, "admin.creds")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.mu.Unlock()
		return fmt.Errorf("remove outdated admin credentials: %w", err)
	}
	err = a.markPermissions()
	a.mu.Unlock()
	// JWTs carry whole seconds: one issued in the revocation's second
	// would count as revoked.
	time.Sleep(time.Until(time.Unix(now+1, 0)))
	return err
}
