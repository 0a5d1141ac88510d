package auth_test

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/nats-io/nuid"
)

// national starts a server as a national bus runs it: operator mode from
// the authority, a leaf node listener.
func national(t *testing.T, a *auth.Authority) (*server.Server, *server.Options) {
	t.Helper()
	o := &server.Options{ServerName: "national", Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: server.RANDOM_PORT}}
	if err := a.Configure(o); err != nil {
		t.Fatal(err)
	}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("national not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s, o
}

// logLines collects a server's log.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(f string, v ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(f, v...))
	l.mu.Unlock()
}
func (l *logLines) Noticef(f string, v ...any) { l.add(f, v...) }
func (l *logLines) Warnf(f string, v ...any)   { l.add(f, v...) }
func (l *logLines) Fatalf(f string, v ...any)  { l.add(f, v...) }
func (l *logLines) Errorf(f string, v ...any)  { l.add(f, v...) }
func (l *logLines) Debugf(f string, v ...any)  { l.add(f, v...) }
func (l *logLines) Tracef(string, ...any)      {}

func (l *logLines) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

// leaf links a server of its own to n as a leaf node with creds.
func leaf(t *testing.T, no *server.Options, creds string) (string, *logLines) {
	t.Helper()
	u, _ := url.Parse(fmt.Sprintf("nats-leaf://127.0.0.1:%d", no.LeafNode.Port))
	name := "leaf-" + nuid.Next()
	o := &server.Options{ServerName: name, Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true,
		LeafNode: server.LeafNodeOpts{ReconnectInterval: 50 * time.Millisecond, Remotes: []*server.RemoteLeafOpts{{URLs: []*url.URL{u}, Credentials: creds}}}}
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	log := &logLines{}
	s.SetLogger(log, true, false)
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("leaf not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return name, log
}

func linked(t *testing.T, n *server.Server, name string) bool {
	lz, err := n.Leafz(&server.LeafzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lz.Leafs {
		if l.Name == name {
			return true
		}
	}
	return false
}

func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	bustest.Eventually(t, 30*time.Second, what, fn)
}

func refused(t *testing.T, n *server.Server, no *server.Options, creds, why string) {
	t.Helper()
	name, log := leaf(t, no, creds)
	eventually(t, "refused: "+why, func() error {
		if !log.has("Leafnode Error") {
			return fmt.Errorf("no refusal logged: %v", log.lines)
		}
		return nil
	})
	if linked(t, n, name) {
		t.Fatalf("%s: linked", why)
	}
}

// oldCreds writes credentials as an earlier version issued them: a user of
// the AXIS account with no connection type restriction.
func oldCreds(t *testing.T, dir, path string) {
	t.Helper()
	seed, err := os.ReadFile(filepath.Join(dir, "account.nk"))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
	if err != nil {
		t.Fatal(err)
	}
	user, _ := nkeys.CreateUser()
	pub, _ := user.PublicKey()
	uc := jwt.NewUserClaims(pub)
	uc.Name = "agency 000.00.00.H99"
	tok, err := uc.Encode(acc)
	if err != nil {
		t.Fatal(err)
	}
	useed, _ := user.Seed()
	b, _ := jwt.FormatUserConfig(tok, useed)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// On a national bus only a member's own link credentials link, once at a
// time, until revoked; agency and bus credentials, including those issued
// before connection types were restricted, are refused as leafs.
func TestLeafConnections(t *testing.T) {
	dir := t.TempDir()
	a, err := auth.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	n, no := national(t, a)

	agency := filepath.Join(dir, "agency.creds")
	if err := a.AgencyCreds("000.00.00.H99", agency); err != nil {
		t.Fatal(err)
	}
	admin, err := a.AdminCreds()
	if err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "old.creds")
	oldCreds(t, dir, old)
	for why, creds := range map[string]string{"agency": agency, "admin": admin, "agency, earlier version": old} {
		refused(t, n, no, creds, why)
	}
	// Agency credentials still work as a client.
	nc, err := nats.Connect(n.ClientURL(), nats.UserCredentials(agency))
	if err != nil {
		t.Fatalf("agency as a client: %v", err)
	}
	nc.Close()

	member := filepath.Join(dir, "hn.creds")
	if err := a.LeafCreds("VN", "HN", member); err != nil {
		t.Fatal(err)
	}
	if m, nat, err := auth.LinkOfCreds(member); err != nil || m != "HN" || nat != "VN" {
		t.Fatalf("link of the credentials: %s %s %v", m, nat, err)
	}
	first, log := leaf(t, no, member)
	eventually(t, "the member links", func() error {
		if !linked(t, n, first) {
			return fmt.Errorf("not linked: %v", log.lines)
		}
		return nil
	})
	links, err := auth.LinksOf(n)
	if err != nil {
		t.Fatal(err)
	}
	acc, ok := links.Account("HN")
	lz, _ := n.Leafz(&server.LeafzOptions{})
	if !ok || len(lz.Leafs) != 1 || lz.Leafs[0].Account != acc || acc == a.AccountPublicKey() {
		t.Fatalf("the member's leaf is bound to %+v, its link account is %s", lz.Leafs, acc)
	}
	refused(t, n, no, member, "a second connection")

	// Revoked: the connected link is closed and does not come back; new
	// credentials link again.
	if err := a.RevokeLeaf("HN"); err != nil {
		t.Fatal(err)
	}
	if err := links.Sync(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the revoked link closed", func() error {
		if linked(t, n, first) {
			return fmt.Errorf("still linked")
		}
		return nil
	})
	if err := a.LeafCreds("VN", "HN", filepath.Join(dir, "hn2.creds")); err != nil {
		t.Fatal(err)
	}
	if err := links.Sync(); err != nil {
		t.Fatal(err)
	}
	again, log2 := leaf(t, no, filepath.Join(dir, "hn2.creds"))
	eventually(t, "the member links with new credentials", func() error {
		if !linked(t, n, again) {
			return fmt.Errorf("not linked: %v", log2.lines)
		}
		return nil
	})
	if linked(t, n, first) {
		t.Fatal("the revoked credentials linked again")
	}
	if !strings.Contains(a.ServerConfig(), "link account of member bus HN") {
		t.Fatal("nats-config leaves out the member's link account")
	}
}

// Credentials of an earlier version's bus user, which allowed any
// connection type or client connections only, are issued again: the bus's
// own connect as clients or in process to the embedded server, never as
// a leaf node.
func TestAdminCredsUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(t *testing.T, a *auth.Authority, dir, path string)
	}{
		{"any connection type", func(t *testing.T, _ *auth.Authority, dir, path string) { oldCreds(t, dir, path) }},
		{"client connections only", func(t *testing.T, a *auth.Authority, _, path string) {
			if err := a.AgencyCreds("000.00.00.G22", path); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a, err := auth.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			tc.write(t, a, dir, filepath.Join(dir, "admin.creds"))
			path, err := a.AdminCreds()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			tok, err := jwt.ParseDecoratedJWT(b)
			if err != nil {
				t.Fatal(err)
			}
			uc, err := jwt.DecodeUserClaims(tok)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := []string(uc.AllowedConnectionTypes), []string{jwt.ConnectionTypeStandard, jwt.ConnectionTypeInProcess}; !slices.Equal(got, want) {
				t.Fatalf("bus credentials allow %v, want %v", got, want)
			}
		})
	}
}
