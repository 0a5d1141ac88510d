package auth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/jwt/v2"
)

// SystemCreds writes credentials for document system id into path: one
// set for every agency the system serves, now and later.
func (a *Authority) SystemCreds(id, path string) error {
	_, _, err := a.issueFile(path, a.account, "system "+id, SystemPermissions(id), clientConnTypes)
	return err
}

// SystemPermissions allow a document system its own mailbox and the bus's
// services, nothing by agency: which agencies it serves changes with the
// directory, so the bus checks that on every request (the system proxy,
// axis.svc.sys.<actor>.>) and NATS permissions need not change with it.
// A system publishes nothing to the record itself: the bus publishes what
// it verified the system may send.
func SystemPermissions(id string) jwt.Permissions {
	t := envelope.Token("=" + id)
	return jwt.Permissions{
		Pub: jwt.Permission{Allow: []string{
			record.SystemServicePrefix + t + ".>",
			"axis.svc.files." + t + ".>",
			"$JS.API.CONSUMER.INFO." + record.Stream + "." + record.SystemDurable(id),
			"$JS.API.CONSUMER.MSG.NEXT." + record.Stream + "." + record.SystemDurable(id),
			"$JS.ACK." + record.Stream + "." + record.SystemDurable(id) + ".>",
			"$JS.API.CONSUMER.INFO." + record.Stream + "." + record.TransferDurable(id),
			"$JS.API.CONSUMER.MSG.NEXT." + record.Stream + "." + record.TransferDurable(id),
			"$JS.ACK." + record.Stream + "." + record.TransferDurable(id) + ".>",
			directoryGet,
			directoryGet + "." + record.KVSubject(record.DirectoryBucket, ">"),
		}},
		Sub: jwt.Permission{Allow: []string{InboxPrefix("="+id) + ".>"}},
	}
}

// SystemOfCreds reads a credentials file issued by SystemCreds and returns
// the system it was issued to, "" for other credentials.
func SystemOfCreds(path string) (string, error) {
	uc, err := readUserClaims(path)
	if err != nil {
		return "", err
	}
	if id, ok := strings.CutPrefix(uc.Name, "system "); ok {
		return id, nil
	}
	return "", nil
}

// RevokeCreds revokes the user of a credentials file from now on (the
// account's revocation list): its JWT is refused at the next account
// update the servers take (serve's start, a federation link sync).
func (a *Authority) RevokeCreds(path string) error {
	uc, err := readUserClaims(path)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	l, err := a.readLedger()
	if err != nil {
		return err
	}
	l.Revoked[uc.Subject] = time.Now().Unix()
	return a.writeLedger(l)
}

// SyncRevocations applies the revocation ledger to the running server
// when it changed since the last call: credentials revoked by another
// process (system remove) are refused, and their connections closed,
// without a restart.
func (l *Links) SyncRevocations() error {
	r := l.r
	b, err := os.ReadFile(r.a.ledgerPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	sum := sha256.Sum256(b)
	r.mu.Lock()
	srv, same := r.srv, r.ledgerSum == sum
	r.mu.Unlock()
	if srv == nil || same {
		return nil
	}
	tok, err := r.a.accountJWT(r.axisLeafs())
	if err != nil {
		return err
	}
	ac, err := jwt.DecodeAccountClaims(tok)
	if err != nil {
		return err
	}
	acc, err := srv.LookupAccount(r.a.AccountPublicKey())
	if err != nil {
		return fmt.Errorf("account of the bus: %w", err)
	}
	srv.UpdateAccountClaims(acc, ac)
	r.mu.Lock()
	r.ledgerSum = sum
	r.mu.Unlock()
	return nil
}
