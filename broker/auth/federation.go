package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// Federation: a member bus links to the national bus through a NATS leaf
// node connection that authenticates with credentials the national issues
// (LeafCreds). On the national bus the leaf lands in the member's own link
// account, never in AXIS: an account of its own per member, signed by the
// national's operator, holding only that member's link (the queue of what
// the national holds for it and the copy of the directory it follows, with
// a JetStream quota). It exports nothing and imports nothing: the AXIS
// account, its JetStream ack subjects, the other members' links and their
// flow control are out of its reach, whatever a member sends. The national
// bus's own federation service bridges the two (Links).
//
// The user's permissions still decide what crosses the link (for a leaf
// connection its publish permissions are what the member may send up, its
// subscribe permissions what the national sends down), the link account
// takes one leaf connection at a time, and LeafCreds records every user it
// issues so that RevokeLeaf can revoke them.

// leafUserPrefix names the user of a member's leaf connection:
// "federation <member> of <national>".
const leafUserPrefix = "federation "

// AccountPublicKey is the public key of the AXIS account: in operator mode
// it is the account's name, which a leaf remote binds (LocalAccount).
func (a *Authority) AccountPublicKey() string {
	pub, _ := a.account.PublicKey()
	return pub
}

// LinkLimits bound what one member's link account may hold on the national
// bus.
type LinkLimits struct {
	// DiskStorage is the link account's JetStream quota in bytes: the queue
	// of what waits for the member and its copy of the directory.
	DiskStorage int64
	// Connections of the national's own federation service in the account.
	Connections int64
	// Subscriptions a member's leaf connection may hold there.
	Subscriptions int64
}

// DefaultLinkLimits: 2 GiB of queue per member.
func DefaultLinkLimits() LinkLimits {
	return LinkLimits{DiskStorage: 2 << 30, Connections: 8, Subscriptions: 10000}
}

// member is a member bus's link account on the national bus: its key
// (DIR/members/ID.nk) and the users issued in it (DIR/members/ID.json).
type member struct {
	id    string
	key   nkeys.KeyPair
	pub   string
	state memberState
}

type memberState struct {
	// LeafUsers are the users LeafCreds issued (public key → issue time).
	LeafUsers map[string]int64 `json:"leaf_users"`
	// Revoked users (public key → revocation time).
	Revoked map[string]int64 `json:"revoked,omitempty"`
	// Removed: the member is out of the federation; its account takes no
	// leaf connection until LeafCreds admits it again.
	Removed bool      `json:"removed,omitempty"`
	Changed time.Time `json:"changed"`
}

// linkIDPattern guards the file names of link accounts; bus ids are
// checked by federation.CheckBusID before they get here.
var linkIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

// ErrNoLink: the member has no link account on this national bus.
var ErrNoLink = errors.New("no link account for this member bus")

func (a *Authority) membersDir() string { return filepath.Join(a.dir, "members") }

// LeafCreds issues the credentials of member's leaf connection to this
// (national) bus into path: a user of the member's link account (created
// on first use), for leaf node connections only, with the permissions of
// LeafPermissions. Issuing them again (a re-key) leaves the earlier ones
// valid until RevokeLeaf; a removed member is admitted again.
func (a *Authority) LeafCreds(national, member, path string) error {
	_, err := a.leafCreds(national, member, path)
	return err
}

// AdmitLeaf issues member's leaf credentials as LeafCreds does and returns
// what undoes them: the user just issued revoked, its file removed (or
// what it replaced put back), and the link account closed again when it
// was missing or closed before.
// `federation member add` writes the link account before it lists the
// member, so that the national never sees a listed member without one,
// and undoes it when the listing is refused.
func (a *Authority) AdmitLeaf(national, member, path string) (undo func() error, err error) {
	wasOpen := false
	if a.loadMembers() == nil {
		a.mu.Lock()
		m := a.members[member]
		wasOpen = m != nil && !m.state.Removed
		a.mu.Unlock()
	}
	before, readErr := os.ReadFile(path)
	pub, err := a.leafCreds(national, member, path)
	if err != nil {
		return nil, err
	}
	return func() error {
		err := a.updateMember(member, func(st *memberState) {
			st.Revoked[pub] = time.Now().Unix()
			st.Removed = !wasOpen
		})
		if err != nil {
			return fmt.Errorf("revoke the leaf credentials just issued to %s: %w", member, err)
		}
		if readErr == nil {
			// The credentials issued before stay valid: their file too.
			return writeAtomic(path, before)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the revoked leaf credentials of %s: %w", member, err)
		}
		return nil
	}, nil
}

func (a *Authority) leafCreds(national, member, path string) (string, error) {
	if !linkIDPattern.MatchString(member) || !linkIDPattern.MatchString(national) {
		return "", fmt.Errorf("leaf credentials: bad bus id %q or %q", member, national)
	}
	m, err := a.ensureMember(member)
	if err != nil {
		return "", err
	}
	pub, iat, err := a.issueFile(path, m.key, leafUserPrefix+member+" of "+national, LeafPermissions(national, member), []string{jwt.ConnectionTypeLeafnode})
	if err != nil {
		return "", err
	}
	return pub, a.updateMember(member, func(st *memberState) {
		st.LeafUsers[pub] = iat
		st.Removed = false
	})
}

// RevokeLeaf revokes every leaf credential issued to member so far and
// closes its link account to leaf connections until LeafCreds admits it
// again (with new credentials). Its queue and history stay on the national
// bus. A running national bus applies it at its next Links.Sync (its
// federation service syncs when the federation directory changes and
// periodically), which also closes a connected link. This is what removing
// a member (and, followed by LeafCreds, re-keying it) does to its link.
func (a *Authority) RevokeLeaf(member string) error {
	if !linkIDPattern.MatchString(member) {
		return fmt.Errorf("revoke leaf credentials: bad bus id %q", member)
	}
	if err := a.loadMembers(); err != nil {
		return err
	}
	a.mu.Lock()
	_, ok := a.members[member]
	a.mu.Unlock()
	if !ok {
		return fmt.Errorf("revoke leaf credentials of %s: %w", member, ErrNoLink)
	}
	now := time.Now().Unix()
	return a.updateMember(member, func(st *memberState) {
		for pub := range st.LeafUsers {
			if _, done := st.Revoked[pub]; !done {
				st.Revoked[pub] = now
			}
		}
		st.Removed = true
	})
}

// HasLink reports whether member has a link account on this national bus.
func (a *Authority) HasLink(member string) bool {
	if a.loadMembers() != nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.members[member]
	return ok
}

func (a *Authority) ensureMember(id string) (*member, error) {
	if err := os.MkdirAll(a.membersDir(), 0o700); err != nil {
		return nil, fmt.Errorf("link account of %s: %w", id, err)
	}
	key, err := loadOrCreate(filepath.Join(a.membersDir(), id+".nk"), nkeys.CreateAccount)
	if err != nil {
		return nil, fmt.Errorf("link account of %s: %w", id, err)
	}
	if err := a.loadMembers(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.members[id]
	if m == nil {
		pub, _ := key.PublicKey()
		m = &member{id: id, key: key, pub: pub, state: memberState{LeafUsers: map[string]int64{}, Revoked: map[string]int64{}}}
		a.members[id] = m
	}
	return m, nil
}

func (a *Authority) updateMember(id string, fn func(*memberState)) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.members[id]
	if m == nil {
		return fmt.Errorf("link account of %s: %w", id, ErrNoLink)
	}
	st := m.state
	st.LeafUsers, st.Revoked = copyMap(st.LeafUsers), copyMap(st.Revoked)
	fn(&st)
	st.Changed = time.Now().UTC()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(a.membersDir(), id+".json"), b); err != nil {
		return fmt.Errorf("link account of %s: %w", id, err)
	}
	m.state = st
	return nil
}

func copyMap(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// loadMembers reads the link accounts from DIR/members: another process
// (`docaxis federation member add`) may have changed them.
func (a *Authority) loadMembers() error {
	entries, err := os.ReadDir(a.membersDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("link accounts: %w", err)
	}
	found := map[string]*member{}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".nk")
		if !ok || !linkIDPattern.MatchString(id) {
			continue
		}
		seed, err := os.ReadFile(filepath.Join(a.membersDir(), e.Name()))
		if err != nil {
			return fmt.Errorf("link account of %s: %w", id, err)
		}
		key, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
		if err != nil {
			return fmt.Errorf("link account of %s: %w", id, err)
		}
		pub, _ := key.PublicKey()
		m := &member{id: id, key: key, pub: pub, state: memberState{LeafUsers: map[string]int64{}, Revoked: map[string]int64{}}}
		if b, err := os.ReadFile(filepath.Join(a.membersDir(), id+".json")); err == nil {
			if err := json.Unmarshal(b, &m.state); err != nil {
				return fmt.Errorf("link account of %s: %w", id, err)
			}
			if m.state.LeafUsers == nil {
				m.state.LeafUsers = map[string]int64{}
			}
			if m.state.Revoked == nil {
				m.state.Revoked = map[string]int64{}
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("link account of %s: %w", id, err)
		}
		found[id] = m
	}
	a.mu.Lock()
	a.members = found
	a.mu.Unlock()
	return nil
}

func (a *Authority) memberIDs() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.members))
	for id := range a.members {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// memberByAccount returns the member whose link account has public key pub.
func (a *Authority) memberByAccount(pub string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, m := range a.members {
		if m.pub == pub {
			return id, true
		}
	}
	return "", false
}

// memberVersion names what memberJWT encodes for member id within l: the
// same version, the same account (a JWT differs at every encoding).
func (a *Authority) memberVersion(id string, l LinkLimits) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.members[id]
	if m == nil {
		return ""
	}
	revoked := make([]string, 0, len(m.state.Revoked))
	for pub, at := range m.state.Revoked {
		revoked = append(revoked, fmt.Sprintf("%s@%d", pub, at))
	}
	sort.Strings(revoked)
	return fmt.Sprintf("%s|%+v|%t|%s", m.pub, l, m.state.Removed, strings.Join(revoked, ","))
}

// memberJWT encodes member id's link account: JetStream within l, one leaf
// connection (none once removed), the national's own service connections,
// and the revoked users.
func (a *Authority) memberJWT(id string, l LinkLimits) (pub, tok string, err error) {
	a.mu.Lock()
	m := a.members[id]
	a.mu.Unlock()
	if m == nil {
		return "", "", fmt.Errorf("link account of %s: %w", id, ErrNoLink)
	}
	ac := jwt.NewAccountClaims(m.pub)
	ac.Name = "FED " + id
	ac.Limits.LeafNodeConn = 1
	if m.state.Removed {
		ac.Limits.LeafNodeConn = 0
	}
	ac.Limits.Conn = l.Connections
	ac.Limits.Subs = l.Subscriptions
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{DiskStorage: l.DiskStorage, Streams: 4, Consumer: 16, MaxAckPending: 10000, MaxBytesRequired: true}
	for pub, at := range m.state.Revoked {
		ac.RevokeAt(pub, time.Unix(at, 0))
	}
	if tok, err = ac.Encode(a.operator); err != nil {
		return "", "", fmt.Errorf("encode link account of %s: %w", id, err)
	}
	return m.pub, tok, nil
}

// serviceUser issues, in memory, a user of member's link account for the
// national bus's own federation service (client and in-process
// connections, every permission within that account).
func (a *Authority) serviceUser(id string) (tok string, seed []byte, err error) {
	a.mu.Lock()
	m := a.members[id]
	a.mu.Unlock()
	if m == nil {
		return "", nil, fmt.Errorf("link account of %s: %w", id, ErrNoLink)
	}
	tok, seed, _, _, err = a.issueUser(m.key, "docaxis link service "+id, jwt.Permissions{},
		[]string{jwt.ConnectionTypeStandard, jwt.ConnectionTypeInProcess})
	return tok, seed, err
}

// LinkInboxPrefix is the reply-subject prefix of the national's service
// connection in member's link account: the member's answers to its
// requests (consumer info, pulled messages) come back there, and the
// member may publish nowhere else of that connection's.
func LinkInboxPrefix(member string) string { return "_INBOX_FED_" + member }

// LeafPermissions allow a member's leaf connection the federation traffic
// of that member and nothing else. Everything named here lives in the
// member's own link account on the national bus.
//
// Down (national → member): the national pulls what the member sends (its
// JetStream API on the member's outbound consumer fed_up, and the acks of
// what it took), and delivers the member's two queues (relay and
// directory), with the responses to the member's API calls.
// Up (member → national): the answers to the national's pulls, on the
// national service's inbox for this link, and, for the member's sourcing
// of its two queues, consumer resets, info and flow control.
func LeafPermissions(national, member string) jwt.Permissions {
	link := record.FedLinkSubjectPrefix + member
	relay := record.FedRelayStream + "." + record.FedDownConsumerPrefix + member
	dir := record.KVStreamPrefix + record.DirectoryBucket + "." + record.FedDirConsumerPrefix + member
	uplink := record.FedOutStream + "." + record.FedUplinkConsumer
	up := []string{
		LinkInboxPrefix(member) + ".>",
		"$JS." + national + ".API.CONSUMER.RESET." + relay,
		"$JS." + national + ".API.CONSUMER.INFO." + relay,
		"$JS." + national + ".API.CONSUMER.RESET." + dir,
		"$JS." + national + ".API.CONSUMER.INFO." + dir,
		// Flow control of the two queues, in both JetStream subject formats.
		"$JS.FC." + relay + ".>",
		"$JS.FC." + dir + ".>",
		"$JS.FC." + national + ".*." + relay + ".>",
		"$JS.FC." + national + ".*." + dir + ".>",
	}
	down := []string{
		link + ".down",
		link + ".dir",
		"$JSC.R.>",
		"$JS." + member + ".API.CONSUMER.INFO." + uplink,
		"$JS." + member + ".API.CONSUMER.MSG.NEXT." + uplink,
		"$JS.ACK." + uplink + ".>",
		"$JS.ACK." + member + ".*." + uplink + ".>",
	}
	return jwt.Permissions{Pub: jwt.Permission{Allow: up}, Sub: jwt.Permission{Allow: down}}
}

// LinkOfCreds reads leaf credentials issued by LeafCreds and returns the
// member and national bus ids they link.
func LinkOfCreds(path string) (member, national string, err error) {
	uc, err := readUserClaims(path)
	if err != nil {
		return "", "", fmt.Errorf("read uplink credentials: %w", err)
	}
	rest, ok := strings.CutPrefix(uc.Name, leafUserPrefix)
	member, national, ok2 := strings.Cut(rest, " of ")
	if !ok || !ok2 || member == "" || national == "" {
		return "", "", fmt.Errorf("uplink credentials %s were not issued by 'docaxis federation member add' (user %q)", path, uc.Name)
	}
	return member, national, nil
}
