package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/internal/freeport"
	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/miniotest"
	"github.com/docaxis/docaxis/storage/s3"
)

// consumeInBackground runs mb.Consume until the test's stop function is
// called, and returns that function.
func consumeInBackground(t *testing.T, mb *broker.Mailbox, h broker.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mb.Consume(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// An application that takes longer than the consumer's first back-off
// step to handle an envelope must not be handed it again meanwhile.
func TestFaultSlowHandlerHandedOnce(t *testing.T) {
	bus := threeAgencies(t)
	if _, err := bus.Client(govOffice).Send(ctxT(t), envelope.New(govOffice, []string{ngheAn}, "Xử lý chậm")); err != nil {
		t.Fatal(err)
	}
	rcpt := bus.Client(ngheAn)
	app := newHandCounter()
	mb, err := rcpt.Mailbox(ctxT(t), ngheAn, broker.OnOutcome(app.outcome))
	if err != nil {
		t.Fatal(err)
	}
	stop := consumeInBackground(t, mb, func(ctx context.Context, d *broker.Delivery) error {
		_ = app.handle(ctx, d)
		time.Sleep(3 * time.Second) // a DMS storing a large document
		return nil
	})
	waitMailboxSettled(t, rcpt, ngheAn, 30*time.Second)
	stop()
	for id, n := range app.snapshot() {
		if n != 1 {
			t.Errorf("envelope %s handed to the application %d times; outcomes %+v", id, n, app.outcomesOf(id))
		}
	}
}

// minioProc is a MinIO server that can be killed and started again on
// the same port and data directory: the store goes away for a while and
// comes back with what it held.
type minioProc struct {
	t        *testing.T
	bin      string
	endpoint string
	dir      string
	cmd      *exec.Cmd
	done     chan struct{}
}

const (
	minioUser   = "docaxis"
	minioSecret = "docaxis-test-secret"
)

func startMinio(t *testing.T) *minioProc {
	t.Helper()
	bin, err := miniotest.FindBinary()
	if err != nil {
		msg := fmt.Sprintf("%v; run `make deps-minio` or set %s", err, miniotest.EnvBinary)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	endpoint, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	m := &minioProc{t: t, bin: bin, endpoint: endpoint, dir: filepath.Join(t.TempDir(), "minio")}
	m.start()
	t.Cleanup(m.kill)
	return m
}

func (m *minioProc) start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "server", m.dir, "--address", m.endpoint, "--console-address", "127.0.0.1:0", "--quiet")
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+minioUser, "MINIO_ROOT_PASSWORD="+minioSecret, "MINIO_BROWSER=off", "MINIO_UPDATE=off")
	// The server dies with the test binary, cleanups or not.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	m.cmd.Stdout, m.cmd.Stderr = &out, &out
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	done := make(chan struct{})
	m.done = done
	go func() { _ = m.cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Ready, and the IAM subsystem up: a store can be opened.
		resp, err := http.Get("http://" + m.endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err = m.store(ctx)
				cancel()
				if err == nil {
					return
				}
			}
		}
		select {
		case <-done:
			m.t.Fatalf("minio exited: %s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("minio not ready at %s: %v", m.endpoint, err)
		}
	}
}

// kill stops the server as a crash or a network cut would.
func (m *minioProc) kill() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// store opens the S3 store on the server with few retries: an outage
// shows within a second.
func (m *minioProc) store(ctx context.Context) (storage.Store, error) {
	return s3.New(ctx, s3.Config{Endpoint: m.endpoint, Bucket: "docaxis-faults", AccessKey: minioUser, SecretKey: minioSecret, MaxRetries: 2})
}

// Storage goes away for a while: a send fails clearly and publishes
// nothing; a recipient retries later rather than quarantining; once the
// store is back, the same send succeeds and both envelopes arrive, with
// their attachments verified, once each.
func TestFaultStorageUnavailable(t *testing.T) {
	bus := threeAgencies(t)
	mio := startMinio(t)
	connect := func(code string) *broker.Client {
		st, err := mio.store(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		c, err := broker.Connect(ctxT(t), bus.URL(), broker.WithIdentity(bus.Identity(code)), broker.WithTrust(bus.Trust),
			broker.WithStore(st), broker.WithLogger(bustest.Logger()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	sender, rcpt := connect(govOffice), connect(ngheAn)
	ctx := ctxT(t)
	contents := map[string][]byte{}
	send := func(e *envelope.Envelope) error {
		content := []byte("Công văn kèm tệp " + e.ID)
		contents[e.ID] = content
		_, err := sender.Send(ctx, e, broker.File{Name: "cv.txt", Reader: bytes.NewReader(content), Size: int64(len(content))})
		return err
	}
	before := envelope.New(govOffice, []string{ngheAn}, "Gửi trước sự cố")
	if err := send(before); err != nil {
		t.Fatal(err)
	}
	records := func() uint64 { return storedCopies(t, sender, ngheAn, govOffice) }
	stored := records()

	mio.kill()
	during := envelope.New(govOffice, []string{ngheAn}, "Gửi trong sự cố")
	err := send(during)
	if !errors.Is(err, storage.ErrUnavailable) || !errors.Is(err, broker.ErrAttachment) {
		t.Fatalf("send with storage down: %v, want ErrUnavailable and ErrAttachment", err)
	}
	if n := records(); n != stored {
		t.Fatalf("a failed send published: %d copies, want %d", n, stored)
	}

	// The recipient meets the outage too: the envelope sent before it
	// cannot be verified now, and must wait, not go to quarantine.
	app := newHandCounter()
	var mu sync.Mutex
	retries := 0
	save := t.TempDir()
	mb, err := rcpt.Mailbox(ctx, ngheAn, broker.SaveAttachments(save), broker.OnOutcome(func(o broker.Outcome) {
		app.outcome(o)
		mu.Lock()
		if o.Retry {
			retries++
		}
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	stop := consumeInBackground(t, mb, app.handle)
	bustest.Eventually(t, 20*time.Second, "recipient did not retry during the outage", func() error {
		mu.Lock()
		n := retries
		mu.Unlock()
		if n < 2 {
			return fmt.Errorf("%d retries: %+v", n, app.outcomesOf(before.ID))
		}
		return nil
	})

	// An outage lasts longer than a burst of immediate redeliveries would.
	time.Sleep(2 * time.Second)
	mio.start()
	if err := send(during); err != nil {
		t.Fatalf("send again once storage is back: %v", err)
	}
	waitMailboxSettled(t, rcpt, ngheAn, time.Minute)
	stop()
	calls := app.snapshot()
	for _, e := range []*envelope.Envelope{before, during} {
		if calls[e.ID] != 1 {
			t.Errorf("%s handed over %d times; outcomes %+v", e.Subject, calls[e.ID], app.outcomesOf(e.ID))
		}
		for _, o := range app.outcomesOf(e.ID) {
			if o.Quarantined {
				t.Errorf("%s quarantined: %s", e.Subject, o.Error)
			}
		}
		got, err := os.ReadFile(filepath.Join(save, e.ID, "cv.txt"))
		if err != nil || !bytes.Equal(got, contents[e.ID]) {
			t.Errorf("%s attachment = %q, %v", e.Subject, got, err)
		}
	}
	if n := records(); n != stored+1 {
		t.Errorf("record holds %d copies, want %d", n, stored+1)
	}
}
