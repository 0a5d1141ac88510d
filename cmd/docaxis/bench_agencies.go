package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/internal/freeport"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

// docaxis bench --agencies N: a country's directory on one bus, measured.
// The bus runs as a child `docaxis serve` (authentication on, HTTP API
// on), so that RSS and CPU read from /proc are the server's alone; this
// process plays the operator (import) and the document systems (round
// trips), each with the credentials it would have in the field.

var agencyBenchFlags struct {
	agencies   int
	perSystem  int
	standalone float64
	pool       int
	roundtrips int
	workers    int
	rate       float64
	latencyN   int
	idle       time.Duration
	keep       bool
}

// AgencyBenchResult is the one JSON object the benchmark prints.
type AgencyBenchResult struct {
	Agencies   int `json:"agencies"`
	Systems    int `json:"systems"`
	Standalone int `json:"standalone"`
	// Registration: systems, keys of standalone agencies, signed
	// bindings and the import, end to end; the rates of the first and
	// last tenth of the written entries show whether the cost per agency
	// stays flat as the directory grows.
	RegisterSeconds  float64 `json:"register_seconds"`
	RegisteredPerSec float64 `json:"registered_per_sec"`
	FirstTenthPerSec float64 `json:"registered_per_sec_first_tenth"`
	LastTenthPerSec  float64 `json:"registered_per_sec_last_tenth"`
	// CPU time, which a machine shared with other work does not inflate
	// as it does wall time: the server's and this process's (the
	// operator's import) for the whole registration, and the server's per
	// 1,000 entries written in the first and in the last tenth.
	RegisterServerCPUSeconds float64 `json:"register_server_cpu_seconds"`
	RegisterClientCPUSeconds float64 `json:"register_client_cpu_seconds"`
	ServerCPUMsPer1000First  float64 `json:"server_cpu_ms_per_1000_first_tenth"`
	ServerCPUMsPer1000Last   float64 `json:"server_cpu_ms_per_1000_last_tenth"`
	RSSMiBAtRest             float64 `json:"rss_mib_at_rest"`
	IdleCPUPercent           float64 `json:"idle_cpu_percent"`
	IdleSeconds              float64 `json:"idle_seconds"`
	AdminConnectMs           float64 `json:"admin_connect_ms"`
	Sync100ChangesMs         float64 `json:"sync_100_changes_ms"`
	CLISync100ChangesMs      float64 `json:"cli_sync_100_changes_ms"`
	RoundtripsPerSec         float64 `json:"roundtrips_per_sec"`
	P50ms                    float64 `json:"p50_ms"`
	P99ms                    float64 `json:"p99_ms"`
	Endpoints                int     `json:"endpoints"`
	// CPU per round trip: the server's, and this process's (the
	// systems' and agencies' clients).
	RoundtripServerCPUMs float64 `json:"roundtrip_server_cpu_ms"`
	RoundtripClientCPUMs float64 `json:"roundtrip_client_cpu_ms"`
	BaselineRoundtrips   float64 `json:"baseline_roundtrips_per_sec"`
	BaselineP50ms        float64 `json:"baseline_p50_ms"`
	BaselineP99ms        float64 `json:"baseline_p99_ms"`
	BaselineEndpoints    int     `json:"baseline_endpoints"`
	BaselineServerCPUMs  float64 `json:"baseline_roundtrip_server_cpu_ms"`
	BaselineClientCPUMs  float64 `json:"baseline_roundtrip_client_cpu_ms"`
	RoundtripN           int     `json:"roundtrip_n"`
	LatencyN             int     `json:"latency_n"`
	LatencyRate          float64 `json:"latency_rate"`
	CPUs                 int     `json:"cpus"`
	ServerRSSMiBAtFinish float64 `json:"rss_mib_at_finish"`
}

func init() {
	f := benchCmd.Flags()
	f.IntVar(&agencyBenchFlags.agencies, "agencies", 0, "register N agencies on an embedded bus (systems of --per-system, --standalone of them with their own keys) and measure it")
	f.IntVar(&agencyBenchFlags.perSystem, "per-system", 500, "with --agencies: agencies served by each document system")
	f.Float64Var(&agencyBenchFlags.standalone, "standalone", 0.01, "with --agencies: share of agencies with their own keys and mailbox")
	f.IntVar(&agencyBenchFlags.pool, "pool", 10, "with --agencies: agencies picked at random among N that exchange mail")
	f.IntVar(&agencyBenchFlags.roundtrips, "roundtrips", 2000, "with --agencies: round trips in the throughput phase")
	f.IntVar(&agencyBenchFlags.latencyN, "roundtrip-latency-n", 600, "with --agencies: envelopes in the latency phase")
	f.Float64Var(&agencyBenchFlags.rate, "roundtrip-rate", 40, "with --agencies: offered rate of the latency phase, per second (below the throughput, or queueing is measured)")
	f.IntVar(&agencyBenchFlags.workers, "roundtrip-workers", 16, "with --agencies: concurrent senders in the throughput phase")
	f.DurationVar(&agencyBenchFlags.idle, "idle", 10*time.Second, "with --agencies: how long the server's idle CPU is measured")
	f.BoolVar(&agencyBenchFlags.keep, "keep", false, "with --agencies: keep the bus homes (printed on stderr)")
}

func benchLog(cmd *cobra.Command, format string, args ...any) {
	fmt.Fprintf(cmd.ErrOrStderr(), "bench: "+format+"\n", args...)
}

// printAgencyBench is bench --agencies.
func printAgencyBench(cmd *cobra.Command) error {
	res, err := runAgencyBench(cmd)
	if err != nil {
		return err
	}
	if benchFlags.json {
		return printJSON(cmd, res)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	fmt.Fprintln(cmd.OutOrStdout(), string(b))
	return nil
}

func runAgencyBench(cmd *cobra.Command) (*AgencyBenchResult, error) {
	ctx := cmd.Context()
	f := agencyBenchFlags
	if f.agencies > maxBenchAgencies {
		return nil, fmt.Errorf("--agencies %d: at most %d", f.agencies, maxBenchAgencies)
	}
	if f.perSystem <= 0 || f.pool < 2 || f.roundtrips <= 0 || f.latencyN <= 0 || f.rate <= 0 || f.workers <= 0 {
		return nil, errors.New("--per-system, --roundtrips, --roundtrip-latency-n, --roundtrip-rate and --roundtrip-workers must be positive, --pool at least 2")
	}
	res := &AgencyBenchResult{Agencies: f.agencies, RoundtripN: f.roundtrips, LatencyN: f.latencyN, LatencyRate: f.rate, CPUs: runtime.NumCPU()}

	// The baseline first, on a bus of its own with 10 agencies.
	benchLog(cmd, "baseline: 10 agencies")
	_, err := benchBus(cmd, 10, func(b *benchEnv) error {
		rt, err := b.roundTrips(ctx, cmd, f.pool)
		if err != nil {
			return err
		}
		res.BaselineRoundtrips, res.BaselineP50ms, res.BaselineP99ms, res.BaselineEndpoints = rt.perSec, rt.p50, rt.p99, rt.endpoints
		res.BaselineServerCPUMs, res.BaselineClientCPUMs = rt.serverCPUMs, rt.clientCPUMs
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}

	benchLog(cmd, "%d agencies", f.agencies)
	_, err = benchBus(cmd, f.agencies, func(b *benchEnv) error {
		res.Systems, res.Standalone = b.systems, b.standaloneN
		res.RegisterSeconds, res.RegisteredPerSec = b.regSeconds, float64(f.agencies)/b.regSeconds
		res.FirstTenthPerSec, res.LastTenthPerSec = b.firstTenth, b.lastTenth
		res.RegisterServerCPUSeconds, res.RegisterClientCPUSeconds = b.regServerCPU, b.regClientCPU
		res.ServerCPUMsPer1000First, res.ServerCPUMsPer1000Last = b.cpuFirstTenth, b.cpuLastTenth
		// At rest: nothing asked of the bus while its RSS and CPU are read,
		// after a moment for what registration set in motion to settle.
		if err := sleepCtx(ctx, 5*time.Second); err != nil {
			return err
		}
		cpu, secs, err := b.child.idleCPU(ctx, f.idle)
		if err != nil {
			return err
		}
		res.IdleCPUPercent, res.IdleSeconds = cpu, secs
		if res.RSSMiBAtRest, err = b.child.rssMiB(); err != nil {
			return err
		}
		benchLog(cmd, "at rest: RSS %.0f MiB, idle CPU %.2f %%", res.RSSMiBAtRest, res.IdleCPUPercent)
		// A new admin client (what every CLI command and serve component
		// opens) and the sync of 100 changes by a DMS and by the CLI.
		t0 := time.Now()
		ac, err := connect(cmd)
		if err != nil {
			return err
		}
		res.AdminConnectMs = ms(time.Since(t0))
		ac.Close()
		if res.Sync100ChangesMs, res.CLISync100ChangesMs, err = b.sync100(ctx, cmd); err != nil {
			return err
		}
		benchLog(cmd, "admin client connects in %.0f ms; 100 changes sync in %.1f ms (DMS), %.0f ms (CLI)", res.AdminConnectMs, res.Sync100ChangesMs, res.CLISync100ChangesMs)
		rt, err := b.roundTrips(ctx, cmd, f.pool)
		if err != nil {
			return err
		}
		res.RoundtripsPerSec, res.P50ms, res.P99ms, res.Endpoints = rt.perSec, rt.p50, rt.p99, rt.endpoints
		res.RoundtripServerCPUMs, res.RoundtripClientCPUMs = rt.serverCPUMs, rt.clientCPUMs
		res.ServerRSSMiBAtFinish, _ = b.child.rssMiB()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// maxBenchAgencies is what the generated hierarchy holds (benchCodes).
const maxBenchAgencies = len(benchLetters) * 100 * (1 + benchDepts*(1+benchUnits))

const (
	benchLetters = "HGK"
	benchDepts   = 20
	benchUnits   = 50
)

type benchAgency struct {
	code, parent, system string
	id                   *signing.Identity // a standalone agency's own
}

// benchCodes makes n standard codes in a hierarchy, parents first:
// provinces and ministries (000.00.00.Mpp), their departments
// (000.00.dd.Mpp), and the units below those (000.uu.dd.Mpp).
func benchCodes(n int) []benchAgency {
	out := make([]benchAgency, 0, n)
	for _, m := range benchLetters {
		for p := 0; p < 100; p++ {
			top := fmt.Sprintf("000.00.00.%c%02d", m, p)
			out = append(out, benchAgency{code: top})
			for d := 1; d <= benchDepts; d++ {
				dept := fmt.Sprintf("000.00.%02d.%c%02d", d, m, p)
				out = append(out, benchAgency{code: dept, parent: top})
				for u := 1; u <= benchUnits; u++ {
					out = append(out, benchAgency{code: fmt.Sprintf("000.%02d.%02d.%c%02d", u, d, m, p), parent: dept})
				}
			}
			if len(out) >= n {
				return out[:n]
			}
		}
	}
	return out[:n]
}

// benchEnv is one bus of the benchmark: its home, the child serve, the
// operator's client, and the agencies it holds.
type benchEnv struct {
	home, url   string
	child       *benchChild
	admin       *broker.Client
	ks          *signing.Keystore
	trust       *signing.Trust
	agencies    []benchAgency
	systems     int
	standaloneN int
	version     uint64
	regSeconds  float64
	firstTenth  float64
	lastTenth   float64
	// CPU seconds of registration, and the server's ms per 1,000 entries.
	regServerCPU, regClientCPU  float64
	cpuFirstTenth, cpuLastTenth float64
	log                         *slog.Logger
}

// benchBus starts a bus in a fresh home, registers n agencies and runs fn.
func benchBus(cmd *cobra.Command, n int, fn func(*benchEnv) error) (*benchEnv, error) {
	ctx := cmd.Context()
	home, err := os.MkdirTemp("", "docaxis-bench-agencies-")
	if err != nil {
		return nil, err
	}
	if agencyBenchFlags.keep {
		benchLog(cmd, "home %s", home)
	} else {
		defer os.RemoveAll(home)
	}
	// The CLI helpers (connect, keystore, the authority) read the globals.
	prevHome, prevServer := flagHome, flagServer
	defer func() { flagHome, flagServer = prevHome, prevServer }()
	flagHome = home
	child, err := startBenchServe(ctx, home)
	if err != nil {
		return nil, err
	}
	defer child.stop()
	flagServer = child.url
	b := &benchEnv{home: home, url: child.url, child: child, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if b.ks, err = keystore(); err != nil {
		return nil, err
	}
	if b.trust = homeTrust(b.ks); b.trust == nil {
		return nil, errors.New("bench: the bus's home holds no CA")
	}
	if b.admin, err = connect(cmd); err != nil {
		return nil, err
	}
	defer func() { b.admin.Close() }()
	if err := b.register(ctx, cmd, n); err != nil {
		return nil, err
	}
	return b, fn(b)
}

// register registers n agencies: systems of --per-system agencies each,
// every 1/--standalone-th agency with a key of its own instead, all
// through one import, as `docaxis agency import` does.
func (b *benchEnv) register(ctx context.Context, cmd *cobra.Command, n int) error {
	f := agencyBenchFlags
	start := time.Now()
	srv0, err := b.child.cpuTicks()
	if err != nil {
		return err
	}
	self0, err := selfCPUTicks()
	if err != nil {
		return err
	}
	ca, err := b.ks.CA()
	if err != nil {
		return err
	}
	b.agencies = benchCodes(n)
	every := 0
	if f.standalone > 0 {
		every = max(1, int(1/f.standalone))
	}
	served := 0
	for i := range b.agencies {
		a := &b.agencies[i]
		// At least one standalone agency, even among 10.
		if every > 0 && (i%every == every-1 || (n < every && i == n-1)) {
			if a.id, err = ca.Issue(a.code, "Cơ quan "+a.code, signing.IssueOptions{}); err != nil {
				return err
			}
			b.standaloneN++
			continue
		}
		a.system = fmt.Sprintf("sys-%04d", served/f.perSystem+1)
		served++
	}
	b.systems = (served + f.perSystem - 1) / f.perSystem
	for s := 1; s <= b.systems; s++ {
		id := fmt.Sprintf("sys-%04d", s)
		sid, err := ca.IssueSystem(id, "Hệ thống QLVB "+id, signing.IssueOptions{})
		if err != nil {
			return err
		}
		if err := b.ks.SaveSystem(sid); err != nil {
			return err
		}
		if err := b.admin.RegisterSystem(ctx, broker.System{ID: id, Name: "Hệ thống QLVB " + id, Certificate: string(signing.EncodeCerts(sid.Chain...))}); err != nil {
			return err
		}
	}
	benchLog(cmd, "%d systems and %d agencies' keys in %.1fs", b.systems, b.standaloneN, time.Since(start).Seconds())
	lines := make([]broker.ImportLine, len(b.agencies))
	for i, a := range b.agencies {
		ag := broker.Agency{Code: a.code, Name: "Cơ quan " + a.code, Parent: a.parent, System: a.system, Email: "vanthu@" + strings.ReplaceAll(a.code, ".", "-") + ".gov.vn"}
		if a.id != nil {
			ag.Certificate = string(signing.EncodeCerts(a.id.Chain...))
		}
		lines[i] = broker.ImportLine{Line: i + 1, Agency: ag, Fields: []string{"parent", "system", "email"}}
	}
	var marks []time.Time
	var done []int
	var ticks []float64 // the server's CPU at each mark, in ms
	res, err := b.admin.ImportAgencies(ctx, lines, broker.ImportOptions{
		Bind: ca.SignBinding,
		Progress: func(d, total int) {
			marks, done = append(marks, time.Now()), append(done, d)
			t, _ := b.child.cpuTicks()
			ticks = append(ticks, float64(t)*1000/clockTicks)
			if len(marks) == 1 || len(marks)%10 == 0 || d == total {
				benchLog(cmd, "registered %d of %d at %.1fs", d, total, time.Since(start).Seconds())
			}
		},
	})
	if err != nil {
		return err
	}
	if len(res.Errors) > 0 {
		return fmt.Errorf("bench import: %d lines failed, the first: %w", len(res.Errors), res.Errors[0])
	}
	b.regSeconds = time.Since(start).Seconds()
	b.version = res.Version
	b.firstTenth, b.lastTenth = tenthRates(marks, done)
	b.cpuFirstTenth, b.cpuLastTenth = tenthCosts(ticks, done)
	srv1, err := b.child.cpuTicks()
	if err != nil {
		return err
	}
	self1, err := selfCPUTicks()
	if err != nil {
		return err
	}
	b.regServerCPU, b.regClientCPU = float64(srv1-srv0)/clockTicks, float64(self1-self0)/clockTicks
	return nil
}

// tenthCosts returns the CPU ms per 1,000 entries over the progress
// reports covering the first and the last tenth of the entries (ms holds
// the CPU at each report).
func tenthCosts(ms []float64, done []int) (first, last float64) {
	if len(ms) < 3 {
		return 0, 0
	}
	total := done[len(done)-1]
	cost := func(i, j int) float64 {
		if n := done[j] - done[i]; n > 0 {
			return (ms[j] - ms[i]) / float64(n) * 1000
		}
		return 0
	}
	i := 1
	for i < len(done)-1 && done[i]-done[0] < total/10 {
		i++
	}
	j := len(done) - 2
	for j > 0 && done[len(done)-1]-done[j] < total/10 {
		j--
	}
	return cost(0, i), cost(j, len(done)-1)
}

// tenthRates returns the write rates over the progress reports covering
// the first and the last tenth of the entries.
func tenthRates(marks []time.Time, done []int) (first, last float64) {
	if len(marks) < 3 {
		return 0, 0
	}
	total := done[len(done)-1]
	rate := func(i, j int) float64 {
		if d := marks[j].Sub(marks[i]).Seconds(); d > 0 {
			return float64(done[j]-done[i]) / d
		}
		return 0
	}
	i := 1
	for i < len(done)-1 && done[i]-done[0] < total/10 {
		i++
	}
	j := len(done) - 2
	for j > 0 && done[len(done)-1]-done[j] < total/10 {
		j--
	}
	return rate(0, i), rate(j, len(done)-1)
}

// sync100 changes 100 agencies, then reads the changes since the version
// before them as a DMS does (a system's client) and as the CLI does
// (`docaxis agency list --since V --json`, a process of its own).
func (b *benchEnv) sync100(ctx context.Context, cmd *cobra.Command) (dms, cli float64, err error) {
	before := b.version
	rnd := rand.New(rand.NewPCG(1, 2))
	changed := map[string]bool{}
	for len(changed) < min(100, len(b.agencies)) {
		code := b.agencies[rnd.IntN(len(b.agencies))].code
		if changed[code] {
			continue
		}
		a, err := b.admin.LookupAgency(ctx, code)
		if err != nil {
			return 0, 0, err
		}
		a.Email = "vanthu2@" + strings.ReplaceAll(code, ".", "-") + ".gov.vn"
		if err := b.admin.RegisterAgency(ctx, *a); err != nil {
			return 0, 0, err
		}
		changed[code] = true
	}
	sc, err := b.systemClient(ctx, "sys-0001")
	if err != nil {
		return 0, 0, err
	}
	defer sc.Close()
	t0 := time.Now()
	ch, err := sc.DirectoryChanges(ctx, before)
	dms = ms(time.Since(t0))
	if err != nil {
		return 0, 0, err
	}
	if len(ch.Agencies) != len(changed) {
		return 0, 0, fmt.Errorf("bench sync: %d changes since version %d, want %d", len(ch.Agencies), before, len(changed))
	}
	self, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	t0 = time.Now()
	out, err := exec.CommandContext(ctx, self, "--home", b.home, "--server", b.url, "agency", "list", "--since", strconv.FormatUint(before, 10), "--json").Output()
	cli = ms(time.Since(t0))
	if err != nil {
		return 0, 0, fmt.Errorf("bench sync: docaxis agency list --since: %w", err)
	}
	var got broker.DirectoryChanges
	if err := json.Unmarshal(out, &got); err != nil || len(got.Agencies) != len(changed) {
		return 0, 0, fmt.Errorf("bench sync: docaxis agency list --since %d: %d changes, want %d (%v)", before, len(got.Agencies), len(changed), err)
	}
	return dms, cli, nil
}

// systemClient connects as document system id, with its own credentials.
func (b *benchEnv) systemClient(ctx context.Context, id string) (*broker.Client, error) {
	a, err := openAuthority()
	if err != nil {
		return nil, err
	}
	creds := systemCredsPath(b.ks, id)
	if !fileExists(creds) {
		if err := a.SystemCreds(id, creds); err != nil {
			return nil, err
		}
	}
	return broker.Connect(ctx, b.url, broker.WithAgencyCredentials(creds), broker.WithKeystore(b.ks), broker.WithTrust(b.trust), broker.WithLogger(b.log))
}

// agencyClient connects as standalone agency a, with its own credentials.
func (b *benchEnv) agencyClient(ctx context.Context, a benchAgency) (*broker.Client, error) {
	if err := b.ks.Save(a.id); err != nil {
		return nil, err
	}
	path, err := issueAgencyCreds(a.code)
	if err != nil {
		return nil, err
	}
	return broker.Connect(ctx, b.url, broker.WithAgencyCredentials(path), broker.WithKeystore(b.ks), broker.WithTrust(b.trust), broker.WithLogger(b.log))
}

type rtResult struct {
	perSec, p50, p99         float64
	serverCPUMs, clientCPUMs float64 // per round trip, throughput phase
	endpoints                int
}

// roundTrips picks pool agencies at random among the bus's, opens the
// mailbox of each one's endpoint (its system's, or its own) with the
// endpoint's credentials, and measures signed round trips between random
// pairs of them: throughput with workers sending as fast as they can,
// then latency (send → the sender's tracking says delivered) at an
// offered rate.
func (b *benchEnv) roundTrips(ctx context.Context, cmd *cobra.Command, pool int) (*rtResult, error) {
	f := agencyBenchFlags
	rnd := rand.New(rand.NewPCG(3, 4))
	var picked []benchAgency
	if pool >= len(b.agencies) {
		picked = b.agencies
	} else {
		for _, i := range rnd.Perm(len(b.agencies))[:pool] {
			picked = append(picked, b.agencies[i])
		}
	}
	clients := map[string]*broker.Client{} // by endpoint: system id or agency code
	sender := map[string]*broker.Client{}  // by agency
	cctx, cancel := context.WithCancel(ctx)
	var consumers sync.WaitGroup
	defer func() {
		cancel()
		consumers.Wait()
		for _, c := range clients {
			c.Close()
		}
	}()
	for _, a := range picked {
		ep := a.system
		if ep == "" {
			ep = a.code
		}
		if c, ok := clients[ep]; ok {
			sender[a.code] = c
			continue
		}
		var c *broker.Client
		var err error
		if a.system != "" {
			c, err = b.systemClient(ctx, a.system)
		} else {
			c, err = b.agencyClient(ctx, a)
		}
		if err != nil {
			return nil, fmt.Errorf("bench: connect as %s: %w", ep, err)
		}
		clients[ep], sender[a.code] = c, c
		mbFor := ""
		if a.system == "" {
			mbFor = a.code
		}
		mb, err := c.Mailbox(ctx, mbFor, broker.BatchSize(256), broker.Concurrency(32))
		if err != nil {
			return nil, fmt.Errorf("bench: mailbox of %s: %w", ep, err)
		}
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			_ = mb.Consume(cctx, func(context.Context, *broker.Delivery) error { return nil })
		}()
	}
	// The sender's tracking reaching "delivered" ends a round trip: the
	// operator follows the tracking bucket.
	kv, err := b.admin.JetStream().KeyValue(ctx, record.TrackBucket)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(cctx, jetstream.UpdatesOnly())
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	started := map[string]time.Time{}
	var latencies []time.Duration
	var delivered atomic.Int64
	consumers.Add(1)
	go func() {
		defer consumers.Done()
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var t broker.Tracking
			if json.Unmarshal(e.Value(), &t) != nil || t.State != envelope.StateDelivered {
				continue
			}
			now := time.Now()
			mu.Lock()
			if s, ok := started[t.Envelope]; ok {
				latencies = append(latencies, now.Sub(s))
				delete(started, t.Envelope)
				delivered.Add(1)
			}
			mu.Unlock()
		}
	}()
	var seq atomic.Int64
	send := func(ctx context.Context) error {
		from := picked[rnd2(len(picked))]
		to := picked[rnd2(len(picked))]
		for to.code == from.code {
			to = picked[rnd2(len(picked))]
		}
		i := seq.Add(1)
		e := envelope.New(from.code, []string{to.code}, fmt.Sprintf("Công văn số %d về việc đo hiệu năng", i))
		e.Body = "Nội dung công văn mẫu dùng cho đo hiệu năng trục liên thông văn bản."
		e.Document = &envelope.Document{CodeNumber: fmt.Sprint(i), CodeNotation: "UBND-VP", Type: "CV"}
		mu.Lock()
		started[e.ID] = time.Now()
		mu.Unlock()
		_, err := sender[from.code].Send(ctx, e)
		return err
	}
	waitFor := func(n int64, limit time.Duration) error {
		deadline := time.Now().Add(limit)
		for delivered.Load() < n {
			if time.Now().After(deadline) {
				return fmt.Errorf("bench: %d of %d round trips completed", delivered.Load(), n)
			}
			if err := sleepCtx(ctx, 5*time.Millisecond); err != nil {
				return err
			}
		}
		return nil
	}
	// A few round trips to open every path (consumers, caches) first.
	for i := 0; i < 2*len(picked); i++ {
		if err := send(ctx); err != nil {
			return nil, fmt.Errorf("bench send: %w", err)
		}
	}
	if err := waitFor(int64(2*len(picked)), 2*time.Minute); err != nil {
		return nil, err
	}
	delivered.Store(0)

	srv0, err := b.child.cpuTicks()
	if err != nil {
		return nil, err
	}
	self0, err := selfCPUTicks()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, f.workers)
	for range f.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(f.roundtrips) {
				if err := send(ctx); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return nil, fmt.Errorf("bench send: %w", err)
	default:
	}
	if err := waitFor(int64(f.roundtrips), 5*time.Minute); err != nil {
		return nil, err
	}
	out := &rtResult{perSec: float64(f.roundtrips) / time.Since(start).Seconds(), endpoints: len(clients)}
	srv1, err := b.child.cpuTicks()
	if err != nil {
		return nil, err
	}
	self1, err := selfCPUTicks()
	if err != nil {
		return nil, err
	}
	out.serverCPUMs = float64(srv1-srv0) * 1000 / clockTicks / float64(f.roundtrips)
	out.clientCPUMs = float64(self1-self0) * 1000 / clockTicks / float64(f.roundtrips)

	mu.Lock()
	latencies = latencies[:0]
	mu.Unlock()
	delivered.Store(0)
	tick := time.NewTicker(time.Duration(float64(time.Second) / f.rate))
	defer tick.Stop()
	var lwg sync.WaitGroup
	for range f.latencyN {
		<-tick.C
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			if err := send(ctx); err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}
	lwg.Wait()
	select {
	case err := <-errc:
		return nil, fmt.Errorf("bench send: %w", err)
	default:
	}
	if err := waitFor(int64(f.latencyN), 2*time.Minute); err != nil {
		return nil, err
	}
	mu.Lock()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	out.p50 = ms(latencies[len(latencies)/2])
	out.p99 = ms(latencies[int(0.99*float64(len(latencies)-1))])
	mu.Unlock()
	benchLog(cmd, "round trips among %d agencies (%d endpoints): %.0f/s, p50 %.1f ms, p99 %.1f ms", len(picked), out.endpoints, out.perSec, out.p50, out.p99)
	return out, nil
}

var rndMu sync.Mutex
var rndPairs = rand.New(rand.NewPCG(5, 6))

func rnd2(n int) int {
	rndMu.Lock()
	defer rndMu.Unlock()
	return rndPairs.IntN(n)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// benchChild is a `docaxis serve` started by the benchmark.
type benchChild struct {
	cmd  *exec.Cmd
	url  string
	done chan error
}

// startBenchServe runs `docaxis serve` on home (authentication on, the
// HTTP API on) on free ports and waits until it serves.
func startBenchServe(ctx context.Context, home string) (*benchChild, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	nport, err := freePort()
	if err != nil {
		return nil, err
	}
	hport, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(home, "serve.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "--home", home, "serve", "--listen", "127.0.0.1:"+nport, "--http", "127.0.0.1:"+hport, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "DOCAXIS_HOME="+home)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start docaxis serve: %w", err)
	}
	c := &benchChild{cmd: cmd, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if rest, ok := strings.CutPrefix(line, "docaxis serving on "); ok {
				url, _, _ := strings.Cut(rest, " ")
				select {
				case ready <- url:
				default:
				}
			}
		}
		logf.Close()
		c.done <- cmd.Wait()
	}()
	select {
	case c.url = <-ready:
		return c, nil
	case err := <-c.done:
		return nil, fmt.Errorf("docaxis serve exited before serving (%v): see %s", err, filepath.Join(home, "serve.log"))
	case <-time.After(time.Minute):
		c.stop()
		return nil, errors.New("docaxis serve did not serve within a minute")
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
}

func (c *benchChild) stop() {
	_ = c.cmd.Process.Signal(os.Interrupt)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// rssMiB reads the child's resident set from /proc.
func (c *benchChild) rssMiB() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("server RSS: %w", err)
	}
	return parseVmRSS(b)
}

// parseVmRSS reads the VmRSS line of a /proc/PID/status, in MiB.
func parseVmRSS(b []byte) (float64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("server RSS %q: %w", line, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("server RSS: no VmRSS in /proc status")
}

// cpuTicks reads the child's user+system CPU time from /proc, in clock
// ticks.
func (c *benchChild) cpuTicks() (uint64, error) { return procCPUTicks(c.cmd.Process.Pid) }

// selfCPUTicks is this process's CPU time, in clock ticks.
func selfCPUTicks() (uint64, error) { return procCPUTicks(os.Getpid()) }

func procCPUTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("server CPU: %w", err)
	}
	return parseProcStat(b)
}

// parseProcStat returns utime+stime of a /proc/PID/stat, in clock ticks.
func parseProcStat(b []byte) (uint64, error) {
	// The command name (field 2) may hold spaces and parentheses: count
	// from its last ')'.
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, fmt.Errorf("server CPU: /proc stat %q has no command name", cutString(s, 64))
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("server CPU: short /proc stat %q", cutString(s, 64))
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("server CPU: %w", err)
	}
	return utime + stime, nil
}

// idleCPU returns the child's CPU use over d, in percent of one core.
func (c *benchChild) idleCPU(ctx context.Context, d time.Duration) (float64, float64, error) {
	t0, err := c.cpuTicks()
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := sleepCtx(ctx, d); err != nil {
		return 0, 0, err
	}
	t1, err := c.cpuTicks()
	if err != nil {
		return 0, 0, err
	}
	secs := time.Since(start).Seconds()
	return float64(t1-t0) / float64(clockTicks) / secs * 100, secs, nil
}

// clockTicks is USER_HZ, the unit of /proc stat times: 100 on every
// Linux architecture Go runs on.
const clockTicks = 100

func cutString(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func freePort() (string, error) {
	p, err := freeport.Port()
	return strconv.Itoa(p), err
}
