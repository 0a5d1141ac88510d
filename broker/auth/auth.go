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
	"slices"
	"strings"
	"sync"

	"github.com/docaxis/docaxis/broker/record"
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
	dir      string
	operator nkeys.KeyPair
	system   nkeys.KeyPair
	account  nkeys.KeyPair
	opJWT    string
	sysJWT   string
	mu       sync.Mutex
	// members caches the link accounts of member buses (federation.go),
	// re-read from DIR/members by loadMembers.
	members map[string]*member
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

	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "docaxis"
	oc.SystemAccount = sysPub
	if a.opJWT, err = oc.Encode(a.operator); err != nil {
		return nil, fmt.Errorf("encode operator JWT: %w", err)
	}
	sc := jwt.NewAccountClaims(sysPub)
	sc.Name = "SYS"
	// Nothing extends the system account over a leaf connection.
	sc.Limits.LeafNodeConn = 0
	if a.sysJWT, err = sc.Encode(a.operator); err != nil {
		return nil, fmt.Errorf("encode system account JWT: %w", err)
	}
	if fresh {
		// Nothing was issued under older permissions.
		if err := a.markPermissions(); err != nil {
			return nil, err
		}
	}
	if _, err := a.accountJWT(jwt.NoLimit); err != nil {
		return nil, err
	}
	return a, nil
}

// accountJWT encodes the AXIS account allowing leafs leaf node connections
// (jwt.NoLimit: any number).
func (a *Authority) accountJWT(leafs int64) (string, error) {
	ac := jwt.NewAccountClaims(a.AccountPublicKey())
	ac.Name = Account
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1, MaxAckPending: -1}
	ac.Limits.LeafNodeConn = leafs
	// Revocations of users of the AXIS account (credentials of an earlier
	// version, see upgrade.go).
	if err := a.applyRevocations(ac); err != nil {
		return "", err
	}
	tok, err := ac.Encode(a.operator)
	if err != nil {
		return "", fmt.Errorf("encode account JWT: %w", err)
	}
	return tok, nil
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
// credentials signed by the bus's accounts get in; anonymous connections
// are refused. The server resolves the accounts through the authority
// (resolver.go), so that member buses admitted while it runs get their link
// accounts (federation.go) and the AXIS account takes exactly the leaf
// connections the server solicits itself: none on a national bus, where
// only member link accounts take leafs.
func (a *Authority) Configure(o *server.Options) error {
	oc, err := jwt.DecodeOperatorClaims(a.opJWT)
	if err != nil {
		return err
	}
	sysPub, _ := a.system.PublicKey()
	o.TrustedOperators = []*jwt.OperatorClaims{oc}
	o.AccountResolver = &resolver{a: a, opts: o, limits: DefaultLinkLimits()}
	o.SystemAccount = sysPub
	return nil
}

// clientConnTypes are the connections an agency or the bus itself may
// open: plain client connections. Leaf node connections are refused, so
// that these credentials cannot bind an account over a leaf link (where
// nats-server does not check publish permissions on JetStream ack
// subjects).
var clientConnTypes = []string{jwt.ConnectionTypeStandard}

// adminConnTypes are the bus's own: a client connection, or one in
// process to the embedded server (docaxis serve's services), which only
// code running in the server's process can open.
var adminConnTypes = []string{jwt.ConnectionTypeStandard, jwt.ConnectionTypeInProcess}

// AdminCreds returns the path of the bus's own credentials (all
// permissions in the AXIS account, client and in-process connections),
// creating them on first use. Credentials written by an earlier version,
// which allowed any connection type or client connections only, are
// issued again.
func (a *Authority) AdminCreds() (string, error) {
	path := filepath.Join(a.dir, "admin.creds")
	if uc, err := readUserClaims(path); err == nil && slices.Equal([]string(uc.AllowedConnectionTypes), adminConnTypes) {
		return path, nil
	}
	_, _, err := a.issueFile(path, a.account, "docaxis-admin", jwt.Permissions{}, adminConnTypes)
	return path, err
}

// AgencyCreds issues credentials for agency into path (mode 0600) with
// the permissions of AgencyPermissions, for client connections only.
func (a *Authority) AgencyCreds(agency, path string) error {
	pub, _, err := a.issueFile(path, a.account, "agency "+agency, AgencyPermissions(agency), clientConnTypes)
	if err != nil {
		return err
	}
	return recordIssued(path, pub)
}

// issueFile writes credentials for a new user of the account whose key is
// acc into path and returns the user's public key and issue time.
func (a *Authority) issueFile(path string, acc nkeys.KeyPair, name string, perms jwt.Permissions, connTypes []string) (string, int64, error) {
	tok, seed, pub, iat, err := a.issueUser(acc, name, perms, connTypes)
	if err != nil {
		return "", 0, err
	}
	creds, err := jwt.FormatUserConfig(tok, seed)
	if err != nil {
		return "", 0, err
	}
	if err := writeAtomic(path, creds); err != nil {
		return "", 0, fmt.Errorf("write credentials %s: %w", path, err)
	}
	return pub, iat, nil
}

// issueUser signs a new user of the account whose key is acc, limited to
// connTypes (every non-empty list: no credentials allow every kind).
func (a *Authority) issueUser(acc nkeys.KeyPair, name string, perms jwt.Permissions, connTypes []string) (tok string, seed []byte, pub string, iat int64, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	user, err := nkeys.CreateUser()
	if err != nil {
		return "", nil, "", 0, err
	}
	pub, _ = user.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	uc.Permissions = perms
	uc.AllowedConnectionTypes = jwt.StringList(connTypes)
	if tok, err = uc.Encode(acc); err != nil {
		return "", nil, "", 0, fmt.Errorf("encode user JWT for %s: %w", name, err)
	}
	seed, _ = user.Seed()
	if dec, err := jwt.DecodeUserClaims(tok); err == nil {
		iat = dec.IssuedAt
	}
	return tok, seed, pub, iat, nil
}

func readUserClaims(path string) (*jwt.UserClaims, error) {
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
		record.SentFilter(agency),
		record.ReportedFilter(agency),
		record.QuarantineServicePrefix + t, // the bus writes the quarantine; agencies ask it to
		"axis.svc.files." + t + ".>",
		// Mailbox: bind, fetch, acknowledge; nothing else on that stream.
		"$JS.API.CONSUMER.INFO." + record.Stream + "." + record.MailboxDurable(agency),
		"$JS.API.CONSUMER.MSG.NEXT." + record.Stream + "." + record.MailboxDurable(agency),
		"$JS.ACK." + record.Stream + "." + record.MailboxDurable(agency) + ".>",
		// Directory: read by key, and by last value per key (roots, CRLs)
		// or page by page (a listing) with the request form of direct get,
		// which names no subject. The directory is public to every agency
		// (names and certificates, as GET /v1/agencies lists them); it
		// holds no traffic.
		directoryGet,
		directoryGet + "." + record.KVSubject(record.DirectoryBucket, ">"),
		// Tracking: through the bus's tracking service only, which answers
		// from the agency's own pairs; no JetStream access to the bucket,
		// whose API would list every key and let consumers be made or
		// deleted, the bus's own included.
		record.TrackServicePrefix + t + ".>",
		// Idempotent receive markers of its own mailbox, by key. A raw
		// publish carries any header: the bucket's stream takes no
		// rollup (bus.Setup), or "Nats-Rollup: all" would purge it.
		"$JS.API.DIRECT.GET." + record.KVStream(record.ReceivedBucket) + "." + record.KVSubject(record.ReceivedBucket, record.ReceivedKey(agency, "*")),
		record.KVSubject(record.ReceivedBucket, record.ReceivedKey(agency, "*")),
	}
	return jwt.Permissions{
		Pub: jwt.Permission{Allow: pub},
		Sub: jwt.Permission{Allow: []string{
			InboxPrefix(agency) + ".>",
			// The changes of its own pairs, published by the bus.
			record.TrackEventPrefix + t,
		}},
	}
}

// ServerConfig returns the nats-server configuration fragment for an
// external cluster: the operator JWT, the system account and a memory
// resolver preloaded with the bus's accounts, the link accounts of the
// member buses admitted so far included (write it again and reload the
// servers after 'docaxis federation member add'). The AXIS account takes
// leaf connections there: on a national bus's cluster, do not let members'
// leaf connections bind it (its remotes must use the link accounts).
func (a *Authority) ServerConfig() string {
	sysPub, _ := a.system.PublicKey()
	accPub := a.AccountPublicKey()
	accJWT, _ := a.accountJWT(jwt.NoLimit)
	var b strings.Builder
	fmt.Fprintf(&b, `# docaxis: decentralised authentication (written by docaxis nats-config)
operator: %q
system_account: %s
resolver: MEMORY
resolver_preload: {
  # SYS
  %s: %q
  # %s: the bus's streams, the bus's admin user and one user per agency
  %s: %q
`, a.opJWT, sysPub, sysPub, a.sysJWT, Account, accPub, accJWT)
	if err := a.loadMembers(); err == nil {
		for _, id := range a.memberIDs() {
			pub, tok, err := a.memberJWT(id, DefaultLinkLimits())
			if err == nil {
				fmt.Fprintf(&b, "  # link account of member bus %s\n  %s: %q\n", id, pub, tok)
			}
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// AgencyOfCreds reads a credentials file issued by AgencyCreds and returns
// the agency it was issued to.
func AgencyOfCreds(path string) (string, error) {
	uc, err := readUserClaims(path)
	if err != nil {
		return "", err
	}
	code, ok := strings.CutPrefix(uc.Name, "agency ")
	if !ok {
		return "", fmt.Errorf("credentials %s were not issued to an agency (user %q)", path, uc.Name)
	}
	return code, nil
}

// directoryGet is the direct-get API of the directory bucket: agencies and
// systems read the directory by key and by last value per key.
const directoryGet = "$JS.API.DIRECT.GET." + record.KVStreamPrefix + record.DirectoryBucket
