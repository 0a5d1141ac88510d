package auth

import (
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// resolver is the account resolver of a bus's embedded server: it encodes
// the accounts from the authority when the server asks, so that link
// accounts created by another process (`docaxis federation member add`)
// resolve, and so that the AXIS account allows exactly the leaf connections
// the server's own options solicit (read when the server asks, after every
// part of `docaxis serve` configured them).
type resolver struct {
	a    *Authority
	opts *server.Options

	mu     sync.Mutex
	srv    *server.Server
	limits LinkLimits
	pushed map[string]string // member → version of its account last applied by Sync
	// ledgerSum is the revocation ledger last applied by SyncRevocations.
	ledgerSum [32]byte
}

var errReadOnly = errors.New("docaxis accounts are issued by the bus's authority, not pushed")

func (r *resolver) Fetch(name string) (string, error) {
	sysPub, _ := r.a.system.PublicKey()
	switch name {
	case sysPub:
		return r.a.sysJWT, nil
	case r.a.AccountPublicKey():
		return r.a.accountJWT(r.axisLeafs())
	}
	id, ok := r.a.memberByAccount(name)
	if !ok {
		// Admitted since the last look?
		if err := r.a.loadMembers(); err != nil {
			return "", err
		}
		if id, ok = r.a.memberByAccount(name); !ok {
			return "", server.ErrMissingAccount
		}
	}
	r.mu.Lock()
	l := r.limits
	r.mu.Unlock()
	_, tok, err := r.a.memberJWT(id, l)
	return tok, err
}

// axisLeafs counts the server's leaf remotes that bind the AXIS account: a
// member bus's uplink; none on a national or standalone bus, whose AXIS
// account then accepts no leaf connection at all, whatever credentials
// (an agency's issued before connection types were restricted, say) a
// remote presents.
func (r *resolver) axisLeafs() int64 {
	var n int64
	for _, rem := range r.opts.LeafNode.Remotes {
		if rem != nil && rem.LocalAccount == r.a.AccountPublicKey() {
			n++
		}
	}
	return n
}

func (r *resolver) Store(string, string) error { return errReadOnly }
func (r *resolver) IsReadOnly() bool           { return true }
func (r *resolver) IsTrackingUpdate() bool     { return false }
func (r *resolver) Reload() error              { return nil }
func (r *resolver) Close()                     {}

func (r *resolver) Start(s *server.Server) error {
	r.mu.Lock()
	r.srv = s
	r.mu.Unlock()
	return nil
}

// Links is a national bus's view of its members' link accounts: the
// authority behind its running embedded server.
type Links struct{ r *resolver }

// LinksOf returns the link accounts of the server srv, which must run with
// an authority's Configure.
func LinksOf(srv *server.Server) (*Links, error) {
	if srv == nil {
		return nil, errors.New("link accounts: no embedded server")
	}
	r, ok := srv.AccountResolver().(*resolver)
	if !ok {
		return nil, errors.New("link accounts: the server does not resolve accounts through a docaxis authority (run it with authentication)")
	}
	return &Links{r: r}, nil
}

// Authority returns the authority behind the links.
func (l *Links) Authority() *Authority { return l.r.a }

// SetLimits sets the limits of every link account, applied at the next
// Sync.
func (l *Links) SetLimits(limits LinkLimits) {
	l.r.mu.Lock()
	l.r.limits = limits
	l.r.mu.Unlock()
}

// Sync reads the link accounts again (another process may have admitted,
// re-keyed or removed a member) and applies them to the running server: a
// new account resolves, a revoked user's connection is closed, a removed
// member's account takes no leaf connection.
func (l *Links) Sync() error {
	r := l.r
	if err := r.a.loadMembers(); err != nil {
		return err
	}
	r.mu.Lock()
	limits := r.limits
	srv := r.srv
	if r.pushed == nil {
		r.pushed = map[string]string{}
	}
	r.mu.Unlock()
	if srv == nil {
		return nil // not started yet: it fetches when it needs them
	}
	var errs []error
	for _, id := range r.a.memberIDs() {
		version := r.a.memberVersion(id, limits)
		r.mu.Lock()
		same := r.pushed[id] == version
		r.mu.Unlock()
		if same {
			continue
		}
		pub, tok, err := r.a.memberJWT(id, limits)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		acc, err := srv.LookupAccount(pub)
		if err != nil {
			errs = append(errs, fmt.Errorf("link account of %s: %w", id, err))
			continue
		}
		ac, err := jwt.DecodeAccountClaims(tok)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		srv.UpdateAccountClaims(acc, ac)
		r.mu.Lock()
		r.pushed[id] = version
		r.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Account returns the public key (the account name on the server) of
// member's link account.
func (l *Links) Account(member string) (string, bool) {
	l.r.a.mu.Lock()
	defer l.r.a.mu.Unlock()
	m := l.r.a.members[member]
	if m == nil {
		return "", false
	}
	return m.pub, true
}

// Member returns the member whose link account is account.
func (l *Links) Member(account string) (string, bool) { return l.r.a.memberByAccount(account) }

// ServiceUser issues, in memory, credentials (user JWT and seed) of the
// national's federation service in member's link account.
func (l *Links) ServiceUser(member string) (string, []byte, error) {
	return l.r.a.serviceUser(member)
}
