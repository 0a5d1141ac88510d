package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/alerts"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/broker/metrics"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

// servePart is one part serve starts once the bus is up; it returns a stop
// function called at shutdown (nil: nothing to stop).
type servePart struct {
	name  string
	start func(ctx context.Context, env *serveEnv) (stop func(), err error)
}

// serveParts are what serve starts once the bus is up, in this order, and
// stops in the reverse order.
func serveParts() []servePart {
	return []servePart{
		// Upgrades of the home's records first: every part after them
		// verifies with the CRLs.
		{"revocation lists", migrateCRLs},
		{"revocations", followRevocations},
		{"audit chainer", startAuditChainer},
		{"federation", startFederation},
		// Alerts watch the federation's links (env.Federation).
		{"alerts", startAlerts},
		{"retention", startRetention},
		// The operator's page shows alerts and federation links.
		{"HTTP API", startHTTP},
		// Last: every part above has registered its collectors.
		{"metrics", startMetrics},
	}
}

// serveEnv is what serve hands to its hooks.
type serveEnv struct {
	Cmd      *cobra.Command
	Service  *bus.Service
	Server   *bus.Server // nil with --nats
	Keystore *signing.Keystore
	Trust    *signing.Trust
	Log      *slog.Logger
	HTTP     string
	// Metrics gathers the bus's figures; hooks add their collectors and
	// --metrics serves them on /metrics (serve_metrics.go).
	Metrics *metrics.Metrics
	// Alerts is set by the alerts hook (nil with --alerts=false), for the
	// operator's page; Federation by the federation hook, for the alerts.
	Alerts     *alerts.Manager
	Federation *federation.Service
}

var serveFlags struct {
	listen    string
	http      string
	nats      string
	replicas  int
	retention time.Duration
	logLevel  string
	limits    broker.Limits
	// attachmentMinRate is filesvc.Config.MinRate.
	attachmentMinRate float64
}

var serveCmd = &cobra.Command{
	Use:   "serve",
	Short: "run the bus: embedded NATS with JetStream, the tracker, the HTTP API",
	Long: `Run the bus. By default everything is embedded: a NATS server with JetStream
storing under --home, the attachment store in the same server, the HTTP API
and the clerks' page. With --nats it joins an external NATS cluster instead.`,
	Args: cobra.NoArgs,
	RunE: runServe,
}

func init() {
	f := serveCmd.Flags()
	f.StringVar(&serveFlags.listen, "listen", "127.0.0.1:4222", "embedded NATS listen address HOST:PORT")
	f.StringVar(&serveFlags.http, "http", "127.0.0.1:8080", "HTTP API and web page address HOST:PORT (empty: off)")
	f.StringVar(&serveFlags.nats, "nats", "", "external NATS cluster URLs (comma separated); no embedded server then")
	f.IntVar(&serveFlags.replicas, "replicas", 0, "stream replicas (default 1 embedded, 3 with --nats)")
	f.DurationVar(&serveFlags.retention, "retention", 10*365*24*time.Hour, "how long the record (envelopes, statuses) is kept")
	f.StringVar(&serveFlags.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	d := broker.DefaultLimits
	f.IntVar(&serveFlags.limits.MaxEnvelopeBytes, "max-envelope-bytes", d.MaxEnvelopeBytes, "largest signed envelope")
	f.IntVar(&serveFlags.limits.MaxRecipients, "max-recipients", d.MaxRecipients, "most recipients per envelope")
	f.IntVar(&serveFlags.limits.MaxAttachments, "max-attachments", d.MaxAttachments, "most attachments per envelope")
	f.Int64Var(&serveFlags.limits.MaxAttachmentSize, "max-attachment-size", d.MaxAttachmentSize, "largest attachment in bytes")
	f.Float64Var(&serveFlags.limits.PublishRate, "max-rate", 0, "envelopes per second per agency (0: no limit)")
	f.Float64Var(&serveFlags.attachmentMinRate, "attachment-min-rate", filesvc.DefaultMinRate, "slowest upload, in bytes per second, the attachment service keeps (0 or less: any)")
	rootCmd.AddCommand(serveCmd)
}

func runServe(cmd *cobra.Command, _ []string) error {
	ctx := cmd.Context()
	var level slog.Level
	if err := level.UnmarshalText([]byte(serveFlags.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// Flags that would stop serve are checked before the bus starts.
	if _, err := metricsToken(metricsFlags.addr, metricsFlags.tokenFile); err != nil {
		return err
	}
	ks, err := keystore()
	if err != nil {
		return err
	}
	ca, err := ks.CA()
	if err != nil {
		return err
	}
	trust := signing.NewTrust(ca.Cert)

	env := &serveEnv{Cmd: cmd, Keystore: ks, Trust: trust, Log: log, HTTP: serveFlags.http}
	url := serveFlags.nats
	replicas := serveFlags.replicas
	var inProcess nats.InProcessConnProvider
	if url == "" {
		if _, _, err := net.SplitHostPort(serveFlags.listen); err != nil {
			return fmt.Errorf("--listen %q: %w", serveFlags.listen, err)
		}
		srv, err := bus.StartServer(bus.ServerConfig{Dir: dataDir(), Listen: serveFlags.listen, Configure: configureServer(env)})
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		env.Server = srv
		url = srv.ClientURL()
		inProcess = srv.NATS()
		log.Info("embedded NATS server ready", "url", url, "store", dataDir())
	} else if replicas == 0 {
		replicas = 3
	}
	nc, err := nats.Connect(strings.TrimSpace(url), append([]nats.Option{nats.Name("docaxis serve"), nats.MaxReconnects(-1)}, serveNATSOptions(inProcess)...)...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	defer nc.Drain()
	if serveFlags.nats != "" {
		if err := waitJetStream(ctx, nc, log); err != nil { // serve_cluster.go
			return err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	store, err := openServeStore(sctx, cmd, log)
	if err != nil {
		cancel()
		return err
	}
	sc := bus.ServiceConfig{
		Bus:    bus.BusConfig{Replicas: replicas, Retention: serveFlags.retention},
		Trust:  trust,
		Logger: log,
		Store:  store,
		Files:  filesvc.Config{MaxSize: serveFlags.limits.MaxAttachmentSize, MinRate: minRate(serveFlags.attachmentMinRate)},
		Server: env.Server,
	}
	svc, err := bus.StartService(sctx, nc, sc)
	cancel()
	if err != nil {
		return err
	}
	defer svc.Stop()
	env.Service = svc
	env.Metrics = metrics.New(svc, log)
	if err := svc.Client.SetLimits(ctx, serveFlags.limits); err != nil {
		return err
	}
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	for _, p := range serveParts() {
		stop, err := p.start(ctx, env)
		if err != nil {
			return fmt.Errorf("start %s: %w", p.name, err)
		}
		if stop != nil {
			stops = append(stops, stop)
		}
	}
	log.Info("docaxis bus serving", "nats", url, "http", serveFlags.http)
	fmt.Fprintf(cmd.ErrOrStderr(), "docaxis serving on %s (home %s)\n", url, flagHome)
	<-ctx.Done()
	log.Info("shutting down")
	return nil
}

// serveNATSOptions are the options of serve's own connection: the bus's
// credentials and, with TLS, the home's CA. To the embedded server
// (inProcess set) it connects in process: the bus's services exchange
// about half of a round trip's messages with the server, and a pipe in
// memory costs less than a socket (no TLS either: nothing leaves the
// process).
func serveNATSOptions(inProcess nats.InProcessConnProvider) []nats.Option {
	var opts []nats.Option
	if creds, err := adminCreds(); err == nil && creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	if inProcess != nil {
		return append(opts, nats.InProcessServer(inProcess))
	}
	if secFlags.serverTLSConfig != nil {
		opts = append(opts, nats.Secure(clientTLS()))
	}
	return opts
}

// openServeStore opens the store chosen by flags (nil: the embedded one),
// waiting while it is unreachable: storage started alongside the bus may
// come up a moment later.
func openServeStore(ctx context.Context, cmd *cobra.Command, log *slog.Logger) (storage.Store, error) {
	for {
		store, err := flagStore(ctx)
		if err == nil || !errors.Is(err, storage.ErrUnavailable) {
			return store, err
		}
		log.Warn("attachment store unreachable, retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Second):
		}
	}
}

// minRate maps --attachment-min-rate to filesvc.Config.MinRate, where zero
// means the default and a negative value no bound.
func minRate(v float64) float64 {
	if v <= 0 {
		return -1
	}
	return v
}
