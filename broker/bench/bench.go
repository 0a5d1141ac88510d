// Package bench measures docaxis against the engine it runs on: full
// signed round trips (sign, publish to the mailbox, consume, verify, signed
// receipt back, the sender's tracking updated) and, in the same run, raw
// JetStream publish + consume + ack of messages of the same sizes.
package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config of a run.
type Config struct {
	N       int     // round trips in the throughput phase (default 20000)
	Rate    float64 // offered rate of the latency phase, per second (default 1000)
	Latency int     // envelopes in the latency phase (default 3000)
	Workers int     // concurrent senders in the throughput phase (default 64)
	KeyType signing.KeyType
	Dir     string // working directory (default a temp dir, removed after)
	Log     *slog.Logger
	// URL of an external NATS cluster (comma-separated) instead of an
	// embedded server, with the options to connect (credentials), and the
	// replicas of every stream, the raw one included (see cluster.go).
	URL         string
	NATSOptions []nats.Option
	Replicas    int
	// Auth issues the agencies' own credentials on the external cluster
	// (the home's authority, whose admin credentials are in NATSOptions).
	// The embedded bus has an authority of its own. Without one the
	// agencies connect with NATSOptions.
	Auth *auth.Authority
	// AgencyNATSOptions are the agencies' connection options besides
	// their credentials (TLS) when Auth is set.
	AgencyNATSOptions []nats.Option

	// embedded is the embedded server (nil on an external cluster): the
	// bus's own services connect to it in process, as docaxis serve does.
	embedded *bus.Server
}

// Result of a run.
type Result struct {
	N                int     `json:"n"`
	Seconds          float64 `json:"seconds"`
	RoundtripsPerSec float64 `json:"roundtrips_per_sec"`
	RawSeconds       float64 `json:"raw_seconds"`
	RawPerSec        float64 `json:"raw_jetstream_per_sec"`
	Ratio            float64 `json:"ratio_vs_jetstream"`
	Rate             float64 `json:"rate"`
	LatencyN         int     `json:"latency_n"`
	P50ms            float64 `json:"p50_ms"`
	P90ms            float64 `json:"p90_ms"`
	P99ms            float64 `json:"p99_ms"`
	MaxMs            float64 `json:"max_ms"`
	// Stages: how long after its send the latency phase's envelopes
	// reached each stage of their round trip, to see where its time goes.
	Stages        []StageLatency `json:"stages"`
	EnvelopeBytes int            `json:"envelope_bytes"`
	ReceiptBytes  int            `json:"receipt_bytes"`
	KeyType       string         `json:"key_type"`
	Target        string         `json:"target"` // "embedded" or the cluster's URLs
	Replicas      int            `json:"replicas"`
	CPUs          int            `json:"cpus"`
	GoVersion     string         `json:"go_version"`
}

// StageLatency is how long after their send the envelopes of the latency
// phase reached one stage of their round trip, in ms.
type StageLatency struct {
	Stage string  `json:"stage"`
	P50ms float64 `json:"p50_ms"`
	P90ms float64 `json:"p90_ms"`
	P99ms float64 `json:"p99_ms"`
}

// The stages of a round trip, in the order of Result.Stages: the send
// returned (the copy is stored), the recipient's handler was called, the
// bus tracked the copy as sent, and the bus tracked the receipt (the round
// trip's end, the latency of P50ms and the others).
var stageNames = [...]string{"stored", "received", "sent", "delivered"}

// trip is one envelope of the latency phase: its send, and how long after
// it it reached each stage.
type trip struct {
	start time.Time
	at    [len(stageNames)]time.Duration
}

const (
	sender    = "000.00.00.G22"
	recipient = "000.00.00.H41"
)

// Run performs a benchmark on a fresh embedded bus.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.N <= 0 {
		cfg.N = 20000
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 1000
	}
	if cfg.Latency <= 0 {
		cfg.Latency = 3000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.KeyType == "" {
		cfg.KeyType = signing.KeyECDSA
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "docaxis-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}
	res := &Result{N: cfg.N, Rate: cfg.Rate, LatencyN: cfg.Latency, KeyType: string(cfg.KeyType), CPUs: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		Target: "embedded", Replicas: max(cfg.Replicas, 1)}
	url := cfg.URL
	if url == "" {
		u, stop, err := startEmbedded(&cfg)
		if err != nil {
			return nil, err
		}
		defer stop()
		url = u
	} else {
		res.Target = url
		cleanup, err := claimCluster(ctx, cfg)
		if err != nil {
			return nil, err
		}
		defer cleanup()
	}
	if err := roundTrips(ctx, url, cfg, res); err != nil {
		return nil, err
	}
	if err := raw(ctx, url, cfg, res); err != nil {
		return nil, err
	}
	res.Ratio = res.RoundtripsPerSec / res.RawPerSec
	return res, nil
}

// startEmbedded starts the embedded server in cfg.Dir with
// authentication on, as `docaxis serve` runs it (the agencies take the
// paths their own credentials allow), and sets cfg's authority and admin
// credentials.
func startEmbedded(cfg *Config) (url string, stop func(), err error) {
	a, err := auth.Open(filepath.Join(cfg.Dir, "nats"))
	if err != nil {
		return "", nil, err
	}
	admin, err := a.AdminCreds()
	if err != nil {
		return "", nil, err
	}
	cfg.Auth, cfg.NATSOptions = a, append(cfg.NATSOptions, nats.UserCredentials(admin))
	srv, err := bus.StartServer(bus.ServerConfig{Dir: filepath.Join(cfg.Dir, "data"), Listen: "127.0.0.1:0", Name: "docaxis-bench", Configure: a.Configure})
	if err != nil {
		return "", nil, err
	}
	cfg.embedded = srv
	return srv.ClientURL(), srv.Shutdown, nil
}

// agencyClient connects as the agency of id, with its own credentials
// when cfg has an authority, as a DMS does.
func agencyClient(ctx context.Context, url string, cfg Config, id *signing.Identity, trust *signing.Trust) (*broker.Client, error) {
	opts := []broker.Option{broker.WithIdentity(id), broker.WithTrust(trust), broker.WithLogger(cfg.Log)}
	if cfg.Auth == nil {
		opts = append(opts, broker.WithNATSOptions(cfg.NATSOptions...))
	} else {
		code := signing.AgencyOf(id.Certificate())
		creds := filepath.Join(cfg.Dir, "agencies", code+".creds")
		if err := os.MkdirAll(filepath.Dir(creds), 0o700); err != nil {
			return nil, err
		}
		if err := cfg.Auth.AgencyCreds(code, creds); err != nil {
			return nil, fmt.Errorf("bench: credentials of %s: %w", code, err)
		}
		opts = append(opts, broker.WithAgencyCredentials(creds), broker.WithNATSOptions(cfg.AgencyNATSOptions...))
	}
	return broker.Connect(ctx, url, opts...)
}

// document is the i-th envelope a run sends.
func document(i int) *envelope.Envelope {
	e := envelope.New(sender, []string{recipient}, fmt.Sprintf("Công văn số %d về việc đo hiệu năng", i))
	e.Body = "Nội dung công văn mẫu dùng cho đo hiệu năng trục liên thông văn bản."
	e.Document = &envelope.Document{CodeNumber: fmt.Sprint(i), CodeNotation: "VPCP-TTĐT", Type: "CV"}
	return e
}

func roundTrips(ctx context.Context, url string, cfg Config, res *Result) error {
	ca, err := signing.NewCA("bench CA", 24*time.Hour)
	if err != nil {
		return err
	}
	trust := signing.NewTrust(ca.Cert)
	ids := map[string]*signing.Identity{}
	for _, code := range []string{sender, recipient} {
		if ids[code], err = ca.Issue(code, code, signing.IssueOptions{KeyType: cfg.KeyType}); err != nil {
			return err
		}
	}
	opts := slices.Clone(cfg.NATSOptions)
	if cfg.embedded != nil {
		opts = append(opts, nats.InProcessServer(cfg.embedded.NATS()))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	svc, err := bus.StartService(ctx, nc, bus.ServiceConfig{Bus: bus.BusConfig{Replicas: cfg.Replicas}, Trust: trust, Logger: cfg.Log, Server: cfg.embedded})
	if err != nil {
		return err
	}
	defer svc.Stop()

	// The sender's tracking reaching "delivered" ends a round trip.
	var mu sync.Mutex
	trips := map[string]*trip{} // the latency phase's envelopes
	var timing atomic.Bool      // the latency phase has begun
	var latencies []time.Duration
	// reached notes the first time the latency phase's envelope id reached
	// stage i, and returns how long after its send.
	reached := func(id string, i int) (time.Duration, bool) {
		if !timing.Load() {
			return 0, false // the throughput phase: no lock on its way
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		tr, ok := trips[id]
		if !ok || tr.at[i] != 0 {
			return 0, false
		}
		tr.at[i] = now.Sub(tr.start)
		return tr.at[i], true
	}
	var delivered atomic.Int64
	doneAll := make(chan struct{}, 1)
	var target atomic.Int64
	target.Store(int64(cfg.N))
	svc.Tracker.Observe(func(t *broker.Tracking, prev envelope.State) {
		if t.State == envelope.StateSent {
			reached(t.Envelope, 2)
		}
		if t.State != envelope.StateDelivered || prev == envelope.StateDelivered {
			return
		}
		if d, ok := reached(t.Envelope, 3); ok {
			mu.Lock()
			latencies = append(latencies, d)
			mu.Unlock()
		}
		if delivered.Add(1) == target.Load() {
			doneAll <- struct{}{}
		}
	})

	for code, id := range ids {
		if err := svc.Client.RegisterAgency(ctx, broker.Agency{Code: code, Name: code, Certificate: string(signing.EncodeCerts(id.Chain...))}); err != nil {
			return err
		}
	}
	sc, err := agencyClient(ctx, url, cfg, ids[sender], trust)
	if err != nil {
		return err
	}
	defer sc.Close()
	rc, err := agencyClient(ctx, url, cfg, ids[recipient], trust)
	if err != nil {
		return err
	}
	defer rc.Close()
	mb, err := rc.Mailbox(ctx, recipient, broker.BatchSize(512), broker.Concurrency(64))
	if err != nil {
		return err
	}
	cctx, cancel := context.WithCancel(ctx)
	consumeDone := make(chan error, 1)
	go func() {
		consumeDone <- mb.Consume(cctx, func(_ context.Context, d *broker.Delivery) error {
			reached(d.Envelope.ID, 1)
			return nil
		})
	}()
	defer func() { cancel(); <-consumeDone }()

	newEnv := document
	// Sizes for the raw comparison.
	probe, err := ids[sender].Seal(newEnv(0))
	if err != nil {
		return err
	}
	res.EnvelopeBytes = len(probe)
	rcpt := envelope.NewStatus(recipient, sender, envelope.NewID(), envelope.StateDelivered)
	rcpt.Status.Digest = envelope.Digest(probe)
	rb, err := ids[recipient].Seal(rcpt)
	if err != nil {
		return err
	}
	res.ReceiptBytes = len(rb)

	// Throughput: workers send as fast as acks come back.
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, cfg.Workers)
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(cfg.N) {
					return
				}
				if _, err := sc.Send(ctx, newEnv(int(i))); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return fmt.Errorf("bench send: %w", err)
	default:
	}
	select {
	case <-doneAll:
	case <-time.After(5 * time.Minute):
		return fmt.Errorf("bench: only %d of %d round trips completed", delivered.Load(), cfg.N)
	case <-ctx.Done():
		return ctx.Err()
	}
	res.Seconds = time.Since(start).Seconds()
	res.RoundtripsPerSec = float64(cfg.N) / res.Seconds

	// Latency at an offered rate: send→sender sees delivered.
	target.Store(-1) // the latency phase counts by its own list
	timing.Store(true)
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var lwg sync.WaitGroup
	for i := 0; i < cfg.Latency; i++ {
		<-tick.C
		e := newEnv(i)
		mu.Lock()
		trips[e.ID] = &trip{start: time.Now()}
		mu.Unlock()
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			_, err := sc.Send(ctx, e)
			reached(e.ID, 0)
			if err != nil {
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
		return fmt.Errorf("bench send: %w", err)
	default:
	}
	deadline := time.After(time.Minute)
	for {
		mu.Lock()
		n := len(latencies)
		mu.Unlock()
		if n >= cfg.Latency {
			break
		}
		select {
		case <-deadline:
			return fmt.Errorf("bench: latency phase completed %d of %d", n, cfg.Latency)
		case <-time.After(10 * time.Millisecond):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	pct := percentiles(latencies)
	res.P50ms, res.P90ms, res.P99ms, res.MaxMs = pct(0.50), pct(0.90), pct(0.99), pct(1)
	for i, name := range stageNames {
		var ds []time.Duration
		for _, tr := range trips {
			if tr.at[i] != 0 {
				ds = append(ds, tr.at[i])
			}
		}
		if len(ds) > 0 {
			pct := percentiles(ds)
			res.Stages = append(res.Stages, StageLatency{Stage: name, P50ms: pct(0.50), P90ms: pct(0.90), P99ms: pct(0.99)})
		}
	}
	return nil
}

// percentiles sorts ds (not empty) and returns its percentiles in ms.
func percentiles(ds []time.Duration) func(p float64) float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return func(p float64) float64 {
		return float64(ds[int(p*float64(len(ds)-1))]) / float64(time.Millisecond)
	}
}

// raw measures plain JetStream with the same message sizes: per round trip
// an envelope-sized message published, consumed and acked, and a
// receipt-sized message published back, consumed and acked.
func raw(ctx context.Context, url string, cfg Config, res *Result) error {
	nc, err := nats.Connect(url, cfg.NATSOptions...)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	envData := make([]byte, res.EnvelopeBytes)
	rcptData := make([]byte, res.ReceiptBytes)
	took, err := pipeline{
		stream:   "RAWBENCH",
		envelope: func(int) ([]byte, error) { return envData, nil },
		answer:   func(jetstream.Msg) ([]byte, error) { return rcptData, nil },
		receipt:  func(jetstream.Msg) error { return nil },
	}.run(ctx, js, cfg.N, cfg.Replicas)
	if err != nil {
		return err
	}
	res.RawSeconds = took.Seconds()
	res.RawPerSec = float64(cfg.N) / res.RawSeconds
	return nil
}
