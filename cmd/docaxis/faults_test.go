package main

// Fault tests across process boundaries: the bus process killed with
// SIGKILL under a sender's traffic, and a recipient process killed
// between receiving an envelope and acknowledging it.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/internal/freeport"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/natstest"
	"github.com/nats-io/nats.go"
)

const (
	faultSender    = "000.00.00.G22"
	faultRecipient = "000.00.00.H41"
)

// faultBinary builds the docaxis binary: serve runs as its own process,
// as in production, so that it can be killed.
func faultBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "docaxis")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// faultServe is a `docaxis serve` subprocess on a fixed home and port
// (embedded NATS) or on an external cluster (nats set).
type faultServe struct {
	t      *testing.T
	bin    string
	home   string
	listen string
	nats   string   // comma-separated URLs of an external cluster
	extra  []string // more serve flags (federation)
	cmd    *exec.Cmd
	done   chan struct{}
	log    *bytes.Buffer
	logMu  sync.Mutex
}

// logText is what serve has written on its standard error so far.
func (s *faultServe) logText() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

func (s *faultServe) url() string {
	if s.nats != "" {
		return s.nats
	}
	return "nats://" + s.listen
}

// start runs serve and waits until it says it is serving.
func (s *faultServe) start() {
	s.t.Helper()
	args := []string{"--home", s.home, "serve", "--http", "", "--log-level", "warn"}
	if s.nats != "" {
		args = append(args, "--nats", s.nats)
	} else {
		args = append(args, "--listen", s.listen)
	}
	args = append(args, s.extra...)
	s.cmd = exec.Command(s.bin, args...)
	// Dies with the test binary whatever happens to the test.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan struct{})
	ready := make(chan struct{})
	log := &bytes.Buffer{}
	s.log = log
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			s.logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			s.logMu.Unlock()
			if strings.HasPrefix(sc.Text(), "docaxis serving on") {
				once.Do(func() { close(ready) })
			}
		}
		_ = s.cmd.Wait()
		close(s.done)
	}()
	select {
	case <-ready:
	case <-s.done:
		s.t.Fatalf("docaxis serve exited: %s", s.logText())
	case <-time.After(time.Minute):
		s.kill()
		s.t.Fatalf("docaxis serve not ready: %s", s.logText())
	}
}

func (s *faultServe) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
}

// run runs a client command of the binary against the bus and returns
// what it printed on its standard output.
func (s *faultServe) run(args ...string) string {
	s.t.Helper()
	cmd := exec.Command(s.bin, append([]string{"--home", s.home, "--server", s.url()}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("docaxis %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// tryRun runs the CLI and returns what it printed, its error output
// included, without failing the test.
func (s *faultServe) tryRun(args ...string) string {
	cmd := exec.Command(s.bin, append([]string{"--home", s.home, "--server", s.url()}, args...)...)
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// client connects from the test process as code would from its DMS: with
// the agency's key and, when the bus issued them, its NATS credentials.
func (s *faultServe) client(ctx context.Context, code string) *broker.Client {
	s.t.Helper()
	ks, err := signing.OpenKeystore(s.home)
	if err != nil {
		s.t.Fatal(err)
	}
	ca, err := ks.CACert()
	if err != nil {
		s.t.Fatal(err)
	}
	opts := []broker.Option{broker.WithKeystore(ks), broker.WithTrust(signing.NewTrust(ca)), broker.WithLogger(bustest.Logger())}
	if creds := filepath.Join(s.home, "agencies", code, "nats.creds"); fileExists(creds) {
		opts = append(opts, broker.WithAgencyCredentials(creds))
	}
	c, err := broker.Connect(ctx, s.url(), opts...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(c.Close)
	return c
}

func faultFreePort(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// ambiguous tells whether a failed send may still have stored its
// envelope: it timed out or lost its connection after publishing.
func ambiguous(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected)
}

// TestFaultServeProcess runs `docaxis serve` as the operator does, as a
// process of its own, and kills what can die under it.
func TestFaultServeProcess(t *testing.T) {
	bin := faultBinary(t)
	t.Run("serve killed during 20000 sends", func(t *testing.T) { faultServeKilledDuringSends(t, bin) })
	t.Run("serve --nats on a three-node cluster, stream leader killed", func(t *testing.T) { faultServeOnCluster(t, bin) })
}

// docaxis serve dies (SIGKILL) while a DMS sends 20,000 envelopes and is
// started again: every send that returned success is delivered exactly
// once; every other send returned an error, and only one that may have
// reached the bus (a timeout) may be delivered, once at most.
func faultServeKilledDuringSends(t *testing.T, bin string) {
	const (
		total   = 20000
		killAt  = 5000
		workers = 32
	)
	start := time.Now()
	s := &faultServe{t: t, bin: bin, home: filepath.Join(t.TempDir(), "home"), listen: faultFreePort(t)}
	s.start()
	t.Cleanup(s.kill)
	s.run("agency", "add", faultSender, "--name", "Văn phòng Chính phủ")
	s.run("agency", "add", faultRecipient, "--name", "UBND tỉnh Nghệ An")
	t.Logf("bus up, agencies added in %s", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sender := s.client(ctx, faultSender)
	type result struct {
		id  string
		err error
	}
	results := make(chan result, total)
	jobs := make(chan int)
	var ok atomic.Int64
	killed := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	sendStart := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				e := envelope.New(faultSender, []string{faultRecipient}, "Công văn số "+strconv.Itoa(i))
				sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := sender.Send(sctx, e)
				scancel()
				results <- result{e.ID, err}
				if err == nil && ok.Add(1) == killAt {
					once.Do(func() { close(killed) })
				}
			}
		}()
	}
	var restartedAfter time.Duration
	go func() {
		<-killed
		s.kill()
		t0 := time.Now()
		s.start()
		restartedAfter = time.Since(t0)
	}()
	for i := range total {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(results)
	sendTime := time.Since(sendStart)

	succeeded := map[string]bool{}
	failed := map[string]error{}
	errKinds := map[string]int{}
	for r := range results {
		if r.err == nil {
			succeeded[r.id] = true
			continue
		}
		failed[r.id] = r.err
		msg := r.err.Error()
		if i := strings.Index(msg, ": "); i > 0 && strings.HasPrefix(msg, "send ") {
			msg = msg[i+2:] // without the envelope id
		}
		errKinds[msg]++
	}
	t.Logf("%d sends in %s: %d succeeded, %d failed; serve restarted in %s", total, sendTime.Round(time.Millisecond),
		len(succeeded), len(failed), restartedAfter.Round(time.Millisecond))
	for msg, n := range errKinds {
		t.Logf("  %d× %s", n, msg)
	}
	if len(succeeded)+len(failed) != total {
		t.Fatalf("%d sends reported, want %d", len(succeeded)+len(failed), total)
	}

	recvStart := time.Now()
	rcpt := s.client(ctx, faultRecipient)
	var mu sync.Mutex
	calls := map[string]int{}
	mb, err := rcpt.Mailbox(ctx, faultRecipient, broker.SkipAttachmentVerification())
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() {
		consumed <- mb.Consume(cctx, func(_ context.Context, d *broker.Delivery) error {
			mu.Lock()
			calls[d.Envelope.ID]++
			mu.Unlock()
			return nil
		})
	}()
	faultWaitSettled(t, rcpt, faultRecipient, 3*time.Minute)
	stop()
	if err := <-consumed; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d envelopes received in %s; whole test %s", len(calls), time.Since(recvStart).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	storedFailed := 0
	for id := range succeeded {
		if calls[id] != 1 {
			t.Errorf("envelope %s: send succeeded, delivered %d times", id, calls[id])
		}
	}
	for id, err := range failed {
		switch n := calls[id]; {
		case n == 0:
		case n == 1 && ambiguous(err):
			storedFailed++
		default:
			t.Errorf("envelope %s: send failed (%v), delivered %d times", id, err, n)
		}
	}
	for id := range calls {
		if !succeeded[id] && failed[id] == nil {
			t.Errorf("envelope %s delivered but never sent", id)
		}
	}
	t.Logf("%d failed sends (timeouts) had stored their envelope and were delivered once", storedFailed)
}

// serve --nats sets the bus up on an external three-node cluster with
// every stream and bucket replicated three ways; the client commands work
// with the cluster's URL list; the node leading the record dies and the
// bus goes on.
func faultServeOnCluster(t *testing.T, bin string) {
	cl := bustest.StartNodes(t, 3)
	s := &faultServe{t: t, bin: bin, home: filepath.Join(t.TempDir(), "home"), nats: cl.URLs()}
	s.start()
	t.Cleanup(s.kill)
	s.run("agency", "add", faultSender, "--name", "Văn phòng Chính phủ")
	s.run("agency", "add", faultRecipient, "--name", "UBND tỉnh Nghệ An")

	_, js := natstest.Connect(t, cl.URLs(), nats.MaxReconnects(-1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	names := js.StreamNames(ctx)
	var streams []string
	for name := range names.Name() {
		streams = append(streams, name)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{record.Stream, record.QuarantineStream, "KV_" + record.TrackBucket, "KV_" + record.DirectoryBucket,
		"KV_" + record.ReceivedBucket, "OBJ_" + storage.DefaultBucket} {
		if !slices.Contains(streams, want) {
			t.Errorf("stream %s missing; have %v", want, streams)
			continue
		}
		st, err := js.Stream(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		if info := st.CachedInfo(); info.Config.Replicas != 3 {
			t.Errorf("stream %s has %d replicas, want 3", want, info.Config.Replicas)
		}
	}

	file := filepath.Join(t.TempDir(), "cv.txt")
	if err := os.WriteFile(file, []byte("Nội dung công văn trên cụm"), 0o644); err != nil {
		t.Fatal(err)
	}
	send := func(subject string) string {
		return strings.TrimSpace(s.run("send", "--as", faultSender, "--to", faultRecipient, "--subject", subject, "--file", file))
	}
	ids := []string{send("Trước sự cố")}
	killed := cl.KillLeader(record.Stream)
	cl.Leader(record.Stream) // the survivors elect a new leader
	t.Logf("killed %s, leader of %s", cl.Nodes[killed].Name, record.Stream)
	ids = append(ids, send("Sau sự cố"))

	save := t.TempDir()
	out := s.run("inbox", "--as", faultRecipient, "--wait", "3s", "--save", save, "--json")
	for _, id := range ids {
		if !strings.Contains(out, `"id":"`+id+`"`) {
			t.Errorf("inbox did not receive %s:\n%s", id, out)
		}
		if got, err := os.ReadFile(filepath.Join(save, id, "cv.txt")); err != nil || string(got) != "Nội dung công văn trên cụm" {
			t.Errorf("attachment of %s = %q, %v", id, got, err)
		}
	}
	if n := strings.Count(out, `"verified":true`); n != len(ids) {
		t.Errorf("inbox verified %d envelopes, want %d:\n%s", n, len(ids), out)
	}
}

// faultWaitSettled waits until agency's mailbox has nothing pending nor
// unacknowledged.
func faultWaitSettled(t *testing.T, c *broker.Client, agency string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var last error
	for {
		cons, err := c.JetStream().Consumer(ctx, record.Stream, record.MailboxDurable(agency))
		if err == nil {
			info := cons.CachedInfo()
			if info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
			err = fmt.Errorf("%d pending, %d unacknowledged", info.NumPending, info.NumAckPending)
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("mailbox of %s not settled after %s: %v", agency, d, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Environment of the recipient helper process.
const (
	envHelper  = "DOCAXIS_FAULT_HELPER"
	envURL     = "DOCAXIS_FAULT_URL"
	envHome    = "DOCAXIS_FAULT_HOME"
	envJournal = "DOCAXIS_FAULT_JOURNAL"
)

// TestFaultRecipientHelper is not a test: it is the recipient process of
// TestFaultRecipientKilled, run as this test binary with envHelper set to
// "block" (the handler never returns) or "handle" (it journals the
// envelope, as a DMS records it in its own database, and returns).
func TestFaultRecipientHelper(t *testing.T) {
	mode := os.Getenv(envHelper)
	if mode == "" {
		return
	}
	err := faultRecipientProcess(mode)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func faultRecipientProcess(mode string) error {
	// A killed recipient's envelope comes back after the ack wait.
	broker.MailboxAckWait = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ks, err := signing.OpenKeystore(os.Getenv(envHome))
	if err != nil {
		return err
	}
	ca, err := ks.CACert()
	if err != nil {
		return err
	}
	c, err := broker.Connect(ctx, os.Getenv(envURL), broker.WithKeystore(ks), broker.WithTrust(signing.NewTrust(ca)),
		broker.WithLogger(bustest.Logger()))
	if err != nil {
		return err
	}
	defer c.Close()
	done := make(chan broker.Outcome, 1)
	mb, err := c.Mailbox(ctx, faultRecipient, broker.OnOutcome(func(o broker.Outcome) {
		if o.Verified || o.Duplicate {
			select {
			case done <- o:
			default:
			}
		}
	}))
	if err != nil {
		return err
	}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	consumed := make(chan error, 1)
	go func() {
		consumed <- mb.Consume(cctx, func(_ context.Context, d *broker.Delivery) error {
			if mode == "block" {
				fmt.Println("HANDLING", d.Envelope.ID)
				select {} // killed here
			}
			f, err := os.OpenFile(os.Getenv(envJournal), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(f, d.Envelope.ID)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		})
	}()
	var o broker.Outcome
	select {
	case o = <-done:
	case <-ctx.Done():
		return errors.New("no envelope handled")
	}
	stop()
	if err := <-consumed; err != nil {
		return err
	}
	if o.Duplicate {
		fmt.Println("DUPLICATE", o.ID)
	} else {
		fmt.Println("HANDLED", o.ID)
	}
	return nil
}

// natsKillProxy forwards one NATS client's connections to the server and
// reads what the client sends; when the client publishes on a subject
// killOn accepts, the proxy kills the client process instead of
// forwarding that message: a crash placed exactly between two steps of
// the client's protocol, with no hook in the client's code.
type natsKillProxy struct {
	l      net.Listener
	target string
	killOn func(subject string) bool
	// kill is set once the process to kill has started; the proxy's
	// goroutines read it, hence the atomic.
	kill  atomic.Pointer[func()]
	fired atomic.Bool
}

func startKillProxy(t *testing.T, target string, killOn func(string) bool) *natsKillProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &natsKillProxy{l: l, target: target, killOn: killOn}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *natsKillProxy) url() string { return "nats://" + p.l.Addr().String() }

func (p *natsKillProxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { _, _ = io.Copy(client, server) }()
	r := bufio.NewReader(client)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return
		}
		var payload []byte
		fields := strings.Fields(string(line))
		if len(fields) >= 3 && (fields[0] == "PUB" || fields[0] == "HPUB") {
			size, err := strconv.Atoi(fields[len(fields)-1])
			if err != nil {
				return
			}
			payload = make([]byte, size+2) // and the CRLF
			if _, err := io.ReadFull(r, payload); err != nil {
				return
			}
			if p.killOn != nil && p.killOn(fields[1]) && p.fired.CompareAndSwap(false, true) {
				if kill := p.kill.Load(); kill != nil {
					(*kill)()
				}
				return
			}
		}
		if _, err := server.Write(append(line, payload...)); err != nil {
			return
		}
	}
}

// A recipient process dies after receiving an envelope and before
// acknowledging it; a second recipient process then gets it again, and
// the application has handled it once in all.
func TestFaultRecipientKilled(t *testing.T) {
	cases := []struct {
		name string
		// killOn places the kill in the first process's traffic; nil
		// kills it inside its handler, which never returns.
		killOn    func(subject string) bool
		firstMode string
		// secondSays is what the second process reports: it handles the
		// envelope, or recognises one handled before the crash.
		secondSays string
	}{
		{"inside the handler", nil, "block", "HANDLED"},
		{"after the received marker, before the ack", func(s string) bool { return strings.HasPrefix(s, "$JS.ACK.") }, "handle", "DUPLICATE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bus := bustest.Start(t)
			bus.AddAgency(faultSender, "Văn phòng Chính phủ")
			bus.AddAgency(faultRecipient, "UBND tỉnh Nghệ An")
			res, err := bus.Client(faultSender).Send(context.Background(), envelope.New(faultSender, []string{faultRecipient}, "Giao lại sau sự cố"))
			if err != nil {
				t.Fatal(err)
			}
			journal := filepath.Join(t.TempDir(), "journal")
			proxy := startKillProxy(t, bus.Listen, tc.killOn)

			first := faultRecipientCmd(bus, proxy.url(), journal, tc.firstMode)
			stdout, err := first.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := first.Start(); err != nil {
				t.Fatal(err)
			}
			kill := func() { _ = first.Process.Signal(syscall.SIGKILL) }
			proxy.kill.Store(&kill)
			lines := bufio.NewScanner(stdout)
			if tc.killOn == nil {
				// Killed while its handler runs.
				if !lines.Scan() || lines.Text() != "HANDLING "+res.ID {
					_ = first.Process.Kill()
					t.Fatalf("first process said %q, %v", lines.Text(), lines.Err())
				}
				_ = first.Process.Signal(syscall.SIGKILL)
			}
			for lines.Scan() {
				t.Logf("first process: %s", lines.Text())
			}
			err = first.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("first process was not killed: %v", err)
			}

			second := faultRecipientCmd(bus, bus.URL(), journal, "handle")
			out, err := second.CombinedOutput()
			if err != nil {
				t.Fatalf("second process: %v\n%s", err, out)
			}
			if want := tc.secondSays + " " + res.ID; !strings.Contains(string(out), want) {
				t.Fatalf("second process said %q, want %q", out, want)
			}
			handled, err := os.ReadFile(journal)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Fields(string(handled)); len(got) != 1 || got[0] != res.ID {
				t.Fatalf("application journal = %q, want %s once", got, res.ID)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := bus.Client(faultSender).WaitState(ctx, res.ID, faultRecipient, envelope.StateDelivered); err != nil {
				t.Fatalf("sender never saw the delivered receipt: %v", err)
			}
		})
	}
}

func faultRecipientCmd(bus *bustest.Bus, url, journal, mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestFaultRecipientHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelper+"="+mode, envURL+"="+url, envHome+"="+filepath.Join(bus.Dir, "home"), envJournal+"="+journal)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}
