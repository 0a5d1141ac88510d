package main

// The README's scale-out procedure, run as an operator runs it: three
// separate nats-server processes of the pinned version, `docaxis
// nats-config`, two `docaxis serve --nats`, agencies registered against the
// cluster, traffic, the record's leader killed with SIGKILL and restarted,
// every serve killed with SIGKILL and restarted; nothing lost, nothing
// handed over twice, everything tracked, and no warnings from the two
// serves' audit chainers.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bench"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// envNATSServer names the nats-server binary (the Makefile's deps build
// the pinned one into bin/).
const envNATSServer = "DOCAXIS_NATS_SERVER"

// natsServerBinary returns the pinned nats-server binary: $DOCAXIS_NATS_SERVER
// (which must exist: under make, and so in CI, a missing binary fails the
// test), else one built from the module cache; the test is skipped only
// when it cannot be built.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envNATSServer); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("nats-server binary %s=%s: %v (make deps builds it)", envNATSServer, p, err)
		}
		return p
	}
	bin := filepath.Join(t.TempDir(), "nats-server")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("build the pinned nats-server: %v\n%s", err, out)
		}
		t.Skipf("the pinned nats-server cannot be built here: %v\n%s", err, out)
	}
	return bin
}

// natsNode is one nats-server process of the cluster.
type natsNode struct {
	t          *testing.T
	bin, name  string
	conf       string
	client     string // host:port
	monitor    string // host:port
	cmd        *exec.Cmd
	done       chan struct{}
	log        *bytes.Buffer
	logMu      sync.Mutex
	startCount int
}

func (n *natsNode) start() {
	n.t.Helper()
	n.cmd = exec.Command(n.bin, "-c", n.conf)
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	n.log = &bytes.Buffer{}
	n.cmd.Stdout, n.cmd.Stderr = &lockedWriter{w: n.log, mu: &n.logMu}, &lockedWriter{w: n.log, mu: &n.logMu}
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("start %s: %v", n.name, err)
	}
	n.startCount++
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(n.done) }()
}

// kill9 kills the process as a crash would.
func (n *natsNode) kill9() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.done
		n.cmd = nil
	}
}

// healthy waits until the node's monitoring port says JetStream is up.
func (n *natsNode) healthy(ctx context.Context) error {
	return n.waitHealth(ctx, "/healthz?js-enabled-only=true")
}

// clustered waits until the node has joined the JetStream meta group and
// is current with its leader: before that, the leader may not know the
// node yet and refuses an R3 stream ("no suitable peers for placement").
func (n *natsNode) clustered(ctx context.Context) error {
	return n.waitHealth(ctx, "/healthz")
}

func (n *natsNode) waitHealth(ctx context.Context, path string) error {
	for {
		resp, err := http.Get("http://" + n.monitor + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			n.logMu.Lock()
			defer n.logMu.Unlock()
			return fmt.Errorf("%s not healthy: %v\n%s", n.name, err, n.log.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// clusterNodeConf is the README's node configuration.
func clusterNodeConf(name, client, monitor, route, store string, routes []string) string {
	return fmt.Sprintf(`server_name: %s
listen: %s
http: %s
jetstream { store_dir: %q }
cluster {
  name: docaxis
  listen: %s
  routes: [ %s ]
}
include docaxis-auth.conf
`, name, client, monitor, store, route, strings.Join(routes, ", "))
}

func TestClusterProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("three nats-server processes and two serves")
	}
	natsBin := natsServerBinary(t)
	bin := faultBinary(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	etc := filepath.Join(dir, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}

	// 1. The authentication fragment, written with the home serve uses,
	// beside the nodes' configuration (include is relative to it).
	out, err := exec.Command(bin, "--home", home, "nats-config", "--out", filepath.Join(etc, "docaxis-auth.conf")).CombinedOutput()
	if err != nil {
		t.Fatalf("nats-config: %v\n%s", err, out)
	}

	// 2. Three nodes.
	nodes := make([]*natsNode, 3)
	var routes, urls []string
	ports := make([][3]string, 3)
	for i := range nodes {
		ports[i] = [3]string{faultFreePort(t), faultFreePort(t), faultFreePort(t)}
		routes = append(routes, "nats://"+ports[i][2])
		urls = append(urls, "nats://"+ports[i][0])
	}
	for i := range nodes {
		name := fmt.Sprintf("n%d", i+1)
		conf := filepath.Join(etc, name+".conf")
		if err := os.WriteFile(conf, []byte(clusterNodeConf(name, ports[i][0], ports[i][1], ports[i][2], filepath.Join(dir, "data", name), routes)), 0o644); err != nil {
			t.Fatal(err)
		}
		nodes[i] = &natsNode{t: t, bin: natsBin, name: name, conf: conf, client: ports[i][0], monitor: ports[i][1]}
		nodes[i].start()
		t.Cleanup(nodes[i].kill9)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				n.logMu.Lock()
				t.Logf("%s:\n%s", n.name, lastLines(n.log.String(), 30))
				n.logMu.Unlock()
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, n := range nodes {
		if err := n.clustered(ctx); err != nil {
			t.Fatal(err)
		}
	}
	clusterURLs := strings.Join(urls, ",")

	// The cluster measured while it is empty, as the README says: the bus
	// set up with three replicas, the agencies on credentials from the
	// home's authority, and everything the run made removed afterwards.
	benchCmd := exec.Command(bin, "--home", home, "bench", "--nats", clusterURLs, "--n", "200", "--latency-n", "100", "--rate", "200", "--json")
	var benchErr bytes.Buffer
	benchCmd.Stderr = &benchErr
	if out, err = benchCmd.Output(); err != nil {
		t.Fatalf("bench --nats: %v\n%s", err, benchErr.String())
	}
	var res bench.Result
	if err := json.Unmarshal(out, &res); err != nil || res.N != 200 || res.Replicas != 3 || res.Target != clusterURLs || !(res.RoundtripsPerSec > 0) || !(res.RawPerSec > 0) {
		t.Fatalf("bench --nats: %v: %s", err, out)
	}

	// 3. Two serves on the cluster (on one host: HTTP off, or each its own
	// --http), then the agencies, registered against the cluster.
	serves := []*faultServe{
		{t: t, bin: bin, home: home, nats: clusterURLs},
		{t: t, bin: bin, home: home, nats: clusterURLs},
	}
	for _, s := range serves {
		s.start()
		t.Cleanup(s.kill)
	}
	serves[0].run("agency", "add", faultSender, "--name", "Văn phòng Chính phủ")
	serves[0].run("agency", "add", faultRecipient, "--name", "UBND tỉnh Nghệ An")

	admin, err := nats.Connect(clusterURLs, nats.UserCredentials(filepath.Join(home, "nats", "admin.creds")), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	leader := func() *natsNode {
		for {
			s, err := js.Stream(ctx, record.Stream)
			if err == nil && s.CachedInfo().Cluster != nil {
				for _, n := range nodes {
					if n.name == s.CachedInfo().Cluster.Leader && n.cmd != nil {
						return n
					}
				}
			}
			if ctx.Err() != nil {
				t.Fatalf("no leader of %s: %v", record.Stream, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// 4. Traffic: a DMS of each agency, in this process, with the agency's
	// credentials; the recipient consumes as it goes.
	sender, rcpt := serves[0].client(ctx, faultSender), serves[0].client(ctx, faultRecipient)
	var mu sync.Mutex
	handed := map[string]int{}
	mb, err := rcpt.Mailbox(ctx, faultRecipient)
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopConsume := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() {
		consumed <- mb.Consume(cctx, func(_ context.Context, d *broker.Delivery) error {
			mu.Lock()
			handed[d.Envelope.ID]++
			mu.Unlock()
			return nil
		})
	}()

	const total = 300
	sent := map[string]bool{}
	var (
		sendErrs []error
		stored   atomic.Int64
		wg       sync.WaitGroup
	)
	ids := make(chan *envelope.Envelope)
	for range 4 {
		wg.Go(func() {
			for e := range ids {
				sctx, scancel := context.WithTimeout(ctx, time.Minute)
				_, err := sender.Send(sctx, e)
				scancel()
				if err != nil {
					mu.Lock()
					sendErrs = append(sendErrs, fmt.Errorf("send %s: %w", e.ID, err))
					mu.Unlock()
					continue
				}
				stored.Add(1)
			}
		})
	}
	var killed *natsNode
	for i := range total {
		switch i {
		case total / 3:
			killed = leader()
			killed.kill9()
			t.Logf("killed %s (SIGKILL), leader of %s, after %d envelopes stored", killed.name, record.Stream, stored.Load())
		case 2 * total / 3:
			killed.start()
			if err := killed.healthy(ctx); err != nil {
				t.Fatal(err)
			}
			t.Logf("restarted %s after %d envelopes stored", killed.name, stored.Load())
		}
		e := envelope.New(faultSender, []string{faultRecipient}, fmt.Sprintf("Công văn số %d", i))
		sent[e.ID] = true
		ids <- e
	}
	close(ids)
	wg.Wait()
	for _, err := range sendErrs {
		t.Errorf("a send failed through the failover: %v", err)
	}

	// 5. Every serve dies; sending goes on, status answers from the
	// record; the serves come back.
	for _, s := range serves {
		s.kill()
	}
	var downIDs []string
	for i := range 10 {
		e := envelope.New(faultSender, []string{faultRecipient}, fmt.Sprintf("Gửi khi serve dừng %d", i))
		sctx, scancel := context.WithTimeout(ctx, time.Minute)
		if _, err := sender.Send(sctx, e); err != nil {
			t.Errorf("send while serve is down: %v", err)
		} else {
			sent[e.ID] = true
			downIDs = append(downIDs, e.ID)
		}
		scancel()
	}
	// Each asked once: the first answer counts. Right after the failover
	// the record's readers may land on the replica still catching up, and
	// the status must be read through the leader all the same.
	for _, id := range downIDs {
		st := serves[0].tryRun("status", "--json", id)
		if !strings.Contains(st, `"state":"sent"`) || !strings.Contains(st, "tracking is catching up") {
			t.Errorf("status of %s while every serve is down: %s; want sent, with the note", id, st)
		}
	}
	for _, s := range serves {
		s.start()
	}

	// 6. Counts: every envelope handed over once, each copy once on
	// record, every pair tracked to delivered.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		cons, err := js.Consumer(ctx, record.Stream, record.MailboxDurable(faultRecipient))
		if err == nil && cons.CachedInfo().NumPending == 0 && cons.CachedInfo().NumAckPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailbox of %s not settled: %v %+v", faultRecipient, err, cons)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		mu.Lock()
		n := len(handed)
		mu.Unlock()
		if n >= len(sent) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The mailbox goes on consuming until every pair is tracked to
	// delivered: a receipt whose publish met the failover goes out again
	// with the copy's redelivery, which only a consuming mailbox gets.
	checkHanded := func() {
		mu.Lock()
		defer mu.Unlock()
		for id := range sent {
			if handed[id] != 1 {
				t.Errorf("envelope %s handed over %d times, want 1", id, handed[id])
			}
		}
		for id := range handed {
			if !sent[id] {
				t.Errorf("envelope %s handed over, never sent", id)
			}
		}
	}
	checkHanded()
	st, err := js.Stream(ctx, record.Stream)
	if err != nil {
		t.Fatal(err)
	}
	subject := record.DocSubject(faultRecipient, faultSender)
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	if got := info.State.Subjects[subject]; got != uint64(len(sent)) {
		t.Errorf("record holds %d copies, want %d", got, len(sent))
	}
	busClient, err := broker.New(ctx, admin, broker.WithTrust(sender.Trust()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("every envelope handed over once; waiting for the tracking")
	// Copies and receipts in hand when the serves died come back to the
	// tracker after its ack wait (30 s).
	deadline = time.Now().Add(3 * time.Minute)
	var notDelivered []string
	for {
		ts, err := busClient.Sent(ctx, faultSender)
		notDelivered = notDelivered[:0]
		if err == nil {
			got := map[string]bool{}
			for _, tr := range ts {
				got[tr.Envelope] = true
				if sent[tr.Envelope] && tr.State != envelope.StateDelivered {
					notDelivered = append(notDelivered, tr.Envelope+" "+string(tr.State))
				}
			}
			for id := range sent {
				if !got[id] {
					notDelivered = append(notDelivered, id+" untracked")
				}
			}
			if len(notDelivered) == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			var stuck []string
			for _, tr := range ts {
				if sent[tr.Envelope] && tr.State != envelope.StateDelivered {
					t.Logf("envelope %s: %s at record #%d, history %+v, refused %+v", tr.Envelope, tr.State, tr.Seq, tr.History, tr.Refused)
					stuck = append(stuck, tr.Envelope)
				}
			}
			// What the record holds about them, and what the serves said
			// of them or of their tracking: a receipt never stored, or
			// stored and not counted.
			for _, id := range stuck {
				sts, err := busClient.Statuses(ctx, id)
				t.Logf("envelope %s: statuses on record %+v (err %v)", id, sts, err)
			}
			for i, s := range serves {
				var said []string
				for _, line := range strings.Split(s.logText(), "\n") {
					if strings.Contains(line, "tracker") || slices.ContainsFunc(stuck, func(id string) bool { return strings.Contains(line, id) }) {
						said = append(said, line)
					}
				}
				t.Logf("serve %d, its tracker and the stuck envelopes:\n%s", i+1, lastLines(strings.Join(said, "\n"), 40))
			}
			t.Fatalf("not tracked to delivered: %d, e.g. %v (err %v)", len(notDelivered), notDelivered[:min(5, len(notDelivered))], err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	stopConsume()
	<-consumed
	checkHanded()

	// 7. Two serves, one chainer: no chainer warnings in either log.
	for i, s := range serves {
		s.kill()
		for _, line := range strings.Split(s.logText(), "\n") {
			if strings.Contains(line, `"component":"audit"`) && (strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`)) {
				t.Errorf("serve %d: %s", i+1, line)
			}
		}
	}
	t.Logf("%d envelopes sent and delivered once through a leader kill and both serves' restart", len(sent))
}

// lastLines is the end of a log, for a failure's report.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
