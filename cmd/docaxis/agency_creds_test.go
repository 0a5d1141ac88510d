package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/docaxis/docaxis/broker/auth"
)

// TestAgencyCredsRevokeCutsOffAConnectedAgency: `agency creds CODE
// --revoke` on a running bus closes the agency's open connection, made
// with a copy of its credentials handed to its document system, refuses
// that copy from then on, and `agency creds CODE` issues new credentials
// that connect.
func TestAgencyCredsRevokeCutsOffAConnectedAgency(t *testing.T) {
	bin := faultBinary(t)
	dir := t.TempDir()
	s := &faultServe{t: t, bin: bin, home: filepath.Join(dir, "home"), listen: faultFreePort(t)}
	s.start()
	t.Cleanup(s.kill)
	s.run("agency", "add", faultSender, "--name", "Văn phòng Chính phủ")
	path := strings.TrimSpace(s.run("agency", "creds", faultSender))
	atTheDMS := filepath.Join(dir, "dms.creds")
	if b, err := os.ReadFile(path); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(atTheDMS, b, 0o600); err != nil {
		t.Fatal(err)
	}
	connect := func(creds string, closed chan struct{}) (*nats.Conn, error) {
		opts := []nats.Option{nats.UserCredentials(creds), nats.CustomInboxPrefix(auth.InboxPrefix(faultSender)),
			nats.MaxReconnects(0), nats.Timeout(5 * time.Second)}
		if closed != nil {
			opts = append(opts, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
		}
		return nats.Connect(s.url(), opts...)
	}
	closed := make(chan struct{})
	nc, err := connect(atTheDMS, closed)
	if err != nil {
		t.Fatalf("the agency's credentials before revocation: %v", err)
	}
	defer nc.Close()

	out := s.run("agency", "creds", faultSender, "--revoke")
	if !strings.Contains(out, "revoked the NATS credentials of "+faultSender+" (1 issued)") {
		t.Fatalf("agency creds --revoke said: %s", out)
	}
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("the agency's connection is still open a minute after its credentials were revoked")
	}
	if nc, err := connect(atTheDMS, nil); err == nil {
		nc.Close()
		t.Fatal("the revoked credentials connected again")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") && !strings.Contains(strings.ToLower(err.Error()), "revoked") {
		t.Fatalf("the revoked credentials: %v, want an authorization error", err)
	}

	newPath := strings.TrimSpace(s.run("agency", "creds", faultSender))
	nc2, err := connect(newPath, nil)
	if err != nil {
		t.Fatalf("new credentials after the revocation: %v", err)
	}
	nc2.Close()
	if out := s.tryRun("agency", "creds", "000.00.00.H99", "--revoke"); !strings.Contains(out, "nothing to revoke") {
		t.Fatalf("revoking credentials never issued: %s", out)
	}
}
