package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// opsServe runs `docaxis serve --config FILE` as its own process, the way
// the systemd unit does, and stops it with SIGTERM.
func opsServe(t *testing.T, bin, config string) (stop func()) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", config)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(), "DOCAXIS_HOME=", "DOCAXIS_LISTEN=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	var mu sync.Mutex
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		var once sync.Once
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.HasPrefix(sc.Text(), "docaxis serving on") {
				once.Do(func() { close(ready) })
			}
		}
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-ready:
	case <-done:
		t.Fatalf("docaxis serve --config exited: %s", log.String())
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("docaxis serve --config not ready: %s", log.String())
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(time.Minute):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func opsConfig(t *testing.T, home, listen string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "docaxis.yaml")
	text := fmt.Sprintf("home: %s\nlisten: %s\nhttp: \"\"\nlog-level: warn\ncheckpoint-interval: 1s\n", home, listen)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func recipientStates(ds *broker.DocumentStatus) string {
	var out []string
	for _, r := range ds.Recipients {
		out = append(out, r.Recipient+"="+string(r.State))
	}
	return strings.Join(out, ",")
}

// TestBackupRestoreUnderTraffic: a bus started from a configuration file
// is backed up while a DMS sends, restored into a new home and started
// there: every document's state is as before, the audit chain verifies,
// the mailbox keeps its place and sending resumes.
func TestBackupRestoreUnderTraffic(t *testing.T) {
	bin := faultBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	s1 := &faultServe{t: t, bin: bin, home: filepath.Join(dir, "home1"), listen: faultFreePort(t)}
	stop1 := opsServe(t, bin, opsConfig(t, s1.home, s1.listen))
	s1.run("agency", "add", faultSender, "--name", "Văn phòng Chính phủ")
	s1.run("agency", "add", faultRecipient, "--name", "UBND tỉnh Nghệ An")
	sender, rcpt := s1.client(ctx, faultSender), s1.client(ctx, faultRecipient)

	// Settled documents: delivered, some accepted.
	var settled []string
	for i := range 12 {
		e := envelope.New(faultSender, []string{faultRecipient}, fmt.Sprintf("Công văn %d", i))
		if _, err := sender.Send(ctx, e); err != nil {
			t.Fatal(err)
		}
		settled = append(settled, e.ID)
	}
	mb, err := rcpt.Mailbox(ctx, faultRecipient)
	if err != nil {
		t.Fatal(err)
	}
	for got := 0; got < len(settled); {
		n, err := mb.Fetch(ctx, 100, time.Second, func(context.Context, *broker.Delivery) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	for i, id := range settled {
		want := envelope.StateDelivered
		if i%3 == 0 {
			if _, err := rcpt.Mark(ctx, faultRecipient, id, envelope.StateAccepted, broker.MarkOptions{Note: "tiếp nhận"}); err != nil {
				t.Fatal(err)
			}
			want = envelope.StateAccepted
		}
		if _, err := sender.WaitState(ctx, id, faultRecipient, want); err != nil {
			t.Fatal(err)
		}
	}
	before := map[string]string{}
	for _, id := range settled {
		ds, err := sender.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		before[id] = recipientStates(ds)
	}

	// Traffic while the backup runs.
	var mu sync.Mutex
	var during []string
	trafficStop := make(chan struct{})
	trafficDone := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		var once sync.Once
		for i := 0; ; i++ {
			select {
			case <-trafficStop:
				trafficDone <- nil
				return
			default:
			}
			e := envelope.New(faultSender, []string{faultRecipient}, fmt.Sprintf("Trong khi sao lưu %d", i))
			if _, err := sender.Send(ctx, e); err != nil {
				trafficDone <- err
				return
			}
			mu.Lock()
			during = append(during, e.ID)
			n := len(during)
			mu.Unlock()
			if n >= 5 {
				once.Do(func() { close(started) })
			}
		}
	}()
	select {
	case <-started:
	case err := <-trafficDone:
		t.Fatalf("traffic: %v", err)
	}
	// Encrypted to a key pair made away from the bus, as an operator who
	// keeps backups off the machine does.
	archive := filepath.Join(dir, "backup", "bus.tar.age")
	if err := os.MkdirAll(filepath.Dir(archive), 0o700); err != nil {
		t.Fatal(err)
	}
	identity := filepath.Join(dir, "backup", "backup.key")
	kg, err := exec.Command(bin, "backup", "keygen", "--out", identity).Output()
	if err != nil {
		t.Fatalf("backup keygen: %v", err)
	}
	recipientKey := strings.TrimSpace(string(kg))
	if fi, err := os.Stat(identity); err != nil || fi.Mode().Perm() != 0o600 || !strings.HasPrefix(recipientKey, "age1") {
		t.Fatalf("backup keygen: identity %v, %v; recipient %q", fi, err, recipientKey)
	}
	var sum backupSummary
	if err := json.Unmarshal([]byte(s1.run("backup", "--out", archive, "--recipient", recipientKey, "--json")), &sum); err != nil {
		t.Fatal(err)
	}
	if !sum.Encrypted || sum.SignedBy == "" {
		t.Fatalf("backup summary %+v: not encrypted, or not signed", sum)
	}
	// The bus's CA certificate, kept apart from the backups, as the
	// operator keeps it to check that a backup is the bus's own.
	caCopy := filepath.Join(dir, "kept-apart-ca.crt")
	if b, err := os.ReadFile(filepath.Join(s1.home, "ca", "ca.crt")); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(caCopy, b, 0o644); err != nil {
		t.Fatal(err)
	}
	close(trafficStop)
	if err := <-trafficDone; err != nil {
		t.Fatalf("traffic: %v", err)
	}
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive %v, %v: want mode 0600 (it holds private keys)", fi, err)
	}
	if sum.RecordSeq == 0 || sum.Streams < 5 {
		t.Fatalf("backup summary %+v", sum)
	}
	// A second backup to the same file is refused; one without
	// --recipient is plain, and verifies without an identity.
	if _, err := exec.Command(bin, "--home", s1.home, "--server", s1.url(), "backup", "--out", archive).Output(); err == nil {
		t.Error("backup over an existing archive was not refused")
	}
	plain := filepath.Join(dir, "backup", "plain.tar")
	s1.run("backup", "--out", plain)
	if out := s1.run("backup", "verify", plain); !strings.HasPrefix(out, "verified "+plain) || strings.Contains(out, "encrypted") {
		t.Errorf("backup verify of a plain archive: %s", out)
	}
	stop1()

	// The encrypted archive: verified and restored with the identity only.
	if out, err := exec.Command(bin, "backup", "verify", archive).CombinedOutput(); err == nil || !strings.Contains(string(out), "identity") {
		t.Fatalf("backup verify of an encrypted archive without its identity: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "backup", "verify", archive, "--identity", identity, "--ca", caCopy).CombinedOutput(); err != nil || !strings.Contains(string(out), "(encrypted), signed by the audit key of CA") {
		t.Fatalf("backup verify --identity: %v\n%s", err, out)
	}
	noKey := filepath.Join(dir, "home-nokey")
	if out, err := exec.Command(bin, "--home", noKey, "restore", archive).CombinedOutput(); err == nil || !strings.Contains(string(out), "encrypted") {
		t.Fatalf("restore of an encrypted archive without its identity: %v\n%s", err, out)
	}
	if _, err := os.Stat(noKey); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused restore created %s: %v", noKey, err)
	}

	// Restore: refused over the old home, accepted into a new one.
	if out, err := exec.Command(bin, "--home", s1.home, "restore", archive, "--identity", identity).CombinedOutput(); err == nil || !strings.Contains(string(out), "not empty") {
		t.Fatalf("restore over a home in use: %v\n%s", err, out)
	}
	s2 := &faultServe{t: t, bin: bin, home: filepath.Join(dir, "home2"), listen: faultFreePort(t)}
	// Another bus's CA is refused; the bus's own restores.
	if out, err := exec.Command(bin, "--home", noKey, "restore", archive, "--identity", identity, "--ca", plainCA(t, dir)).CombinedOutput(); err == nil || !strings.Contains(string(out), "not signed by the trusted bus") {
		t.Fatalf("restore under another bus's CA: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "--home", s2.home, "restore", archive, "--identity", identity, "--ca", caCopy).CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	opsServe(t, bin, opsConfig(t, s2.home, s2.listen))
	sender2, rcpt2 := s2.client(ctx, faultSender), s2.client(ctx, faultRecipient)

	// Every settled document as before (tracking is rebuilt from the
	// record on the first start: wait for it).
	for _, id := range settled {
		for {
			ds, err := sender2.Status(ctx, id)
			if err == nil && recipientStates(ds) == before[id] {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("%s after restore: %v %v, before %s", id, ds, err, before[id])
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	// Documents sent during the backup are there up to the record's point
	// and in state sent, or not there at all.
	present := map[string]bool{}
	for _, id := range during {
		ds, err := sender2.Status(ctx, id)
		if errors.Is(err, broker.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := recipientStates(ds); got != faultRecipient+"=sent" {
			t.Errorf("%s sent during the backup is %s after restore", id, got)
		}
		present[id] = true
	}
	t.Logf("%d documents sent during the backup, %d in it (record through %d)", len(during), len(present), sum.RecordSeq)

	// Sending resumes; the mailbox kept its place: it delivers what was
	// in the backup and not yet received, and the new one, each once.
	e := envelope.New(faultSender, []string{faultRecipient}, "Sau khi khôi phục")
	if _, err := sender2.Send(ctx, e); err != nil {
		t.Fatal(err)
	}
	mb2, err := rcpt2.Mailbox(ctx, faultRecipient)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for got[e.ID] == 0 {
		if _, err := mb2.Fetch(ctx, 100, time.Second, func(_ context.Context, d *broker.Delivery) error {
			got[d.Envelope.ID]++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	for id, n := range got {
		if n != 1 || (id != e.ID && !present[id]) {
			t.Errorf("after restore the mailbox delivered %s %d times (in the backup, not received: %v)", id, n, present[id])
		}
	}
	if len(got) != len(present)+1 {
		t.Errorf("mailbox delivered %d envelopes, want the %d of the backup not yet received and the new one", len(got), len(present))
	}
	if _, err := sender2.WaitState(ctx, e.ID, faultRecipient, envelope.StateDelivered); err != nil {
		t.Fatal(err)
	}

	// The audit chain of the restored record verifies.
	for try := 0; ; try++ {
		bundle := filepath.Join(dir, fmt.Sprintf("audit-%d.zip", try))
		out := s2.run("audit", "export", "--since", "2020-01-01", "--out", bundle)
		if !strings.Contains(out, "covered by a signed checkpoint") {
			if ctx.Err() != nil {
				t.Fatalf("audit export after restore: %s", out)
			}
			time.Sleep(200 * time.Millisecond) // the chainer signs a checkpoint each second
			continue
		}
		if v := s2.run("audit", "verify", bundle); !strings.Contains(v, "OK: the bundle verifies") {
			t.Fatalf("audit verify after restore: %s", v)
		}
		break
	}
}

// plainCA writes the certificate of a new CA, another bus's, to a file in
// dir and returns its path.
func plainCA(t *testing.T, dir string) string {
	t.Helper()
	ca, err := signing.NewCA("another bus", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "another-ca.crt")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
