// Package auth issues the bus's NATS identities: decentralised JWT
// authentication with an operator, a system account and one account (AXIS)
// holding the streams, in which the bus itself has an admin user and each
// agency a user whose permissions allow exactly its own traffic.
//
// Why JWT rather than plain nkeys in the server config: a user JWT carries
// its permissions and is signed by the account key, so `docaxis agency add`
// can issue credentials to a new agency while the bus runs, without
// reloading or restarting the server; the credentials file is the standard
// one that `nats.UserCredentials` reads; and an external cluster only needs
// the operator and account JWTs, which `docaxis nats-config` writes.
package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Account is the name of the account holding the bus's streams.
const Account = "AXIS"

// Authority holds the operator and account keys under a directory
// (DIR/operator.nk, DIR/system.nk, DIR/account.nk and their JWTs).
type Authority struct {
	dir        string
	operator   nkeys.KeyPair
	system     nkeys.KeyPair
	account    nkeys.KeyPair
	opJWT      string
	sysJWT     string
	accountJWT string
	mu         sync.Mutex
}

// Open loads the authority in dir, creating keys and JWTs on first use.
func Open(dir string) (*Authority, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open NATS authority %s: %w", dir, err)
	}
	a := &Authority{dir: dir}
	_, statErr := os.Stat(filepath.Join(dir, "account.nk"))
	fresh := errors.Is(statErr, fs.ErrNotExist)
	var err error
	if a.operator, err = loadOrCreate(filepath.Join(dir, "operator.nk"), nkeys.CreateOperator); err != nil {
		return nil, err
	}
	if a.system, err = loadOrCreate(filepath.Join(dir, "system.nk"), nkeys.CreateAccount); err != nil {
		return nil, err
	}
	if a.account, err = loadOrCreate(filepath.Join(dir, "account.nk"), nkeys.CreateAccount); err != nil {
		return nil, err
	}
	opPub, _ := a.operator.PublicKey()
	sysPub, _ := a.system.PublicKey()
	accPub, _ := a.account.PublicKey()

	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "docaxis"
	oc.SystemAccount = sysPub
	if a.opJWT, err = oc.Encode(a.operator); err != nil {
		return nil, fmt.Errorf("encode operator JWT: %w", err)
	}
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	if a.sysJWT, err = sc.Encode(a.operator); err != nil {
		return nil, fmt.Errorf("encode system account JWT: %w", err)
	}
	ac := jwt.NewAccountClaims(accPub)
	ac.Name = Account
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1, MaxAckPending: -1}
	if fresh {
		// Nothing was issued under older permissions.
		if err := a.markPermissions(); err != nil {
			return nil, err
		}
	}
	if err := a.applyRevocations(ac); err != nil {
		return nil, err
	}
	if a.accountJWT, err = ac.Encode(a.operator); err != nil {
		return nil, fmt.Errorf("encode account JWT: %w", err)
	}
	return a, nil
}

func loadOrCreate(path string, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, error) {
	seed, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		kp, err := create()
		if err != nil {
			return nil, err
		}
		seed, _ = kp.Seed()
		if err := writeAtomic(path, seed); err != nil {
			return nil, fmt.Errorf("save %s: %w", path, err)
		}
		return kp, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return kp, nil
}

func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Configure puts an embedded server in operator mode: only users holding
// credentials signed by the bus's account get in; anonymous connections are
// refused.
func (a *Authority) Configure(o *server.Options) error {
	oc, err := jwt.DecodeOperatorClaims(a.opJWT)
	if err != nil {
		return err
	}
	res := &server.MemAccResolver{}
	sysPub, _ := a.system.PublicKey()
	accPub, _ := a.account.PublicKey()
	if err := res.Store(sysPub, a.sysJWT); err != nil {
		return err
	}
	if err := res.Store(accPub, a.accountJWT); err != nil {
		return err
	}
	o.TrustedOperators = []*jwt.OperatorClaims{oc}
	o.AccountResolver = res
	o.SystemAccount = sysPub
	return nil
}

// AdminCreds returns the path of the bus's own credentials (all
// permissions in the AXIS account), creating them on first use.
func (a *Authority) AdminCreds() (string, error) {
	path := filepath.Join(a.dir, "admin.creds")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	return path, a.issue(path, "docaxis-admin", jwt.Permissions{})
}

// AgencyCreds issues credentials for agency into path (mode 0600) with
// the permissions of AgencyPermissions.
func (a *Authority) AgencyCreds(agency, path string) error {
	return a.issue(path, "agency "+agency, AgencyPermissions(agency))
}

func (a *Authority) issue(path, name string, perms jwt.Permissions) error {
	return a.issueLimited(path, name, perms, nil)
}

// issueLimited writes credentials for a new user; connTypes, when given,
// restricts how it may connect (e.g. only as a leaf node).
func (a *Authority) issueLimited(path, name string, perms jwt.Permissions, connTypes []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	user, err := nkeys.CreateUser()
	if err != nil {
		return err
	}
	pub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	uc.Permissions = perms
	if len(connTypes) > 0 {
		uc.AllowedConnectionTypes = jwt.StringList(connTypes)
	}
	accPub, _ := a.account.PublicKey()
	uc.IssuerAccount = accPub
	tok, err := uc.Encode(a.account)
	if err != nil {
		return fmt.Errorf("encode user JWT for %s: %w", name, err)
	}
	seed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(tok, seed)
	if err != nil {
		return err
	}
	if err := writeAtomic(path, creds); err != nil {
		return fmt.Errorf("write credentials %s: %w", path, err)
	}
	return nil
}

// InboxPrefix is the reply-subject prefix of an agency's connections: it
// may subscribe there and nowhere else, so it cannot read others' replies.
func InboxPrefix(agency string) string { return "_INBOX_" + envelope.Token(agency) }

// AgencyPermissions allow an agency exactly its own traffic: publishing
// envelopes and statuses as itself, consuming its own mailbox, reading the
// directory and the tracking of documents it sent or received, recording
// its receipts, and its attachments through the bus's attachment service.
// Everything else, including the rest of the JetStream API, is denied:
// no STREAM.INFO on the record or a bucket (with subjects_filter it lists
// every subject or key: who writes to whom, every envelope id), no
// STREAM/CONSUMER LIST or NAMES, no consumer created, changed or deleted
// on any stream or bucket (the bus makes the mailbox consumer), no
// $JS.API.INFO (account-wide figures; the client never asks for it).
func AgencyPermissions(agency string) jwt.Permissions {
	t := envelope.Token(agency)
	pub := []string{
		"axis.doc.*." + t,
		"axis.status.*." + t,
		"axis.svc.quarantine." + t, // the bus writes the quarantine; agencies ask it to
		"axis.svc.files." + t + ".>",
		// Mailbox: bind, fetch, acknowledge; nothing else on that stream.
		"$JS.API.CONSUMER.INFO.AXIS.mbox_" + t,
		"$JS.API.CONSUMER.MSG.NEXT.AXIS.mbox_" + t,
		"$JS.ACK.AXIS.mbox_" + t + ".>",
		// Directory: read by key, and by last value per key (roots, CRLs)
		// or page by page (a listing) with the request form of direct get,
		// which names no subject. The directory is public to every agency
		// (names and certificates, as GET /v1/agencies lists them); it
		// holds no traffic.
		"$JS.API.DIRECT.GET.KV_AXIS_DIRECTORY",
		"$JS.API.DIRECT.GET.KV_AXIS_DIRECTORY.$KV.AXIS_DIRECTORY.>",
		// Tracking: through the bus's tracking service only, which answers
		// from the agency's own pairs; no JetStream access to the bucket,
		// whose API would list every key and let consumers be made or
		// deleted, the bus's own included.
		"axis.svc.track." + t + ".>",
		// Idempotent receive markers of its own mailbox, by key.
		"$JS.API.DIRECT.GET.KV_AXIS_RECEIVED.$KV.AXIS_RECEIVED." + t + ".*",
		"$KV.AXIS_RECEIVED." + t + ".*",
	}
	return jwt.Permissions{
		Pub: jwt.Permission{Allow: pub},
		Sub: jwt.Permission{Allow: []string{
			InboxPrefix(agency) + ".>",
			// The changes of its own pairs, published by the bus.
			"axis.evt.track." + t,
		}},
	}
}

// ServerConfig returns the nats-server configuration fragment for an
// external cluster: the operator JWT, the system account and a memory
// resolver preloaded with the bus's accounts.
func (a *Authority) ServerConfig() string {
	sysPub, _ := a.system.PublicKey()
	accPub, _ := a.account.PublicKey()
	return fmt.Sprintf(`# docaxis: decentralised authentication (written by docaxis nats-config)
operator: %q
system_account: %s
resolver: MEMORY
resolver_preload: {
  # SYS
  %s: %q
  # %s: the bus's streams, the bus's admin user and one user per agency
  %s: %q
}
`, a.opJWT, sysPub, sysPub, a.sysJWT, Account, accPub, a.accountJWT)
}

// AgencyOfCreds reads a credentials file issued by AgencyCreds and returns
// the agency it was issued to.
func AgencyOfCreds(path string) (string, error) {
	uc, err := userClaimsOf(path)
	if err != nil {
		return "", err
	}
	code, ok := strings.CutPrefix(uc.Name, "agency ")
	if !ok {
		return "", fmt.Errorf("credentials %s were not issued to an agency (user %q)", path, uc.Name)
	}
	return code, nil
}

// userClaimsOf reads the user JWT of a credentials file.
func userClaimsOf(path string) (*jwt.UserClaims, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	tok, err := jwt.ParseDecoratedJWT(data)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", path, err)
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", path, err)
	}
	return uc, nil
}
