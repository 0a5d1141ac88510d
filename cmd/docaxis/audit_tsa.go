package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/tsa"
	"github.com/docaxis/docaxis/signing"
	"github.com/prometheus/client_golang/prometheus"
)

// Time-stamping of the audit record (RFC 3161): by default the bus runs
// its own local TSA on a loopback listener and asks it; --tsa names
// external TSAs, tried in order.
var tsaFlags struct {
	urls             string
	tlsCA            string
	roots            string
	listen           string
	maxUntimestamped time.Duration
}

// activeTimestamper is the running time-stamper, for the operator's page
// (its Status and Subscribe) and /metrics.
var activeTimestamper struct {
	sync.Mutex
	t     *audit.Timestamper
	roots []*x509.Certificate // trusted for its tokens
}

// CurrentTimestamper returns the serve's time-stamper (nil before start
// or when serve is not running in this process).
func CurrentTimestamper() *audit.Timestamper {
	activeTimestamper.Lock()
	defer activeTimestamper.Unlock()
	return activeTimestamper.t
}

func init() {
	f := serveCmd.Flags()
	f.StringVar(&tsaFlags.urls, "tsa", "", "RFC 3161 time-stamping authorities URL[,URL...], tried in order (default: the bus's local TSA)")
	f.StringVar(&tsaFlags.tlsCA, "tsa-ca", "", "PEM file of the CA(s) trusted for the TSAs' HTTPS certificates (default: the system's)")
	f.StringVar(&tsaFlags.roots, "tsa-root", "", "PEM file of the root(s) trusted for time-stamp tokens of --tsa (default: the bus CA)")
	f.StringVar(&tsaFlags.listen, "tsa-listen", "127.0.0.1:0", "where the local TSA listens (application/timestamp-query) when --tsa is not given")
	f.DurationVar(&tsaFlags.maxUntimestamped, "max-untimestamped", 4*time.Hour, "refuse new documents when a checkpoint has waited this long for a time-stamp (negative: never)")
}

// startTimestamping starts the local TSA (unless --tsa) and the
// time-stamper; the chainer hands it every checkpoint.
func startTimestamping(ctx context.Context, env *serveEnv, ca *signing.CA, replicas int) (*audit.Timestamper, func(), error) {
	var stops []func()
	stopAll := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	roots := []*x509.Certificate{ca.Cert}
	var urls []string
	if tsaFlags.urls == "" {
		a, err := tsa.OpenAuthority(filepath.Join(env.Keystore.Dir, "tsa"), ca)
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", tsaFlags.listen)
		if err != nil {
			return nil, nil, fmt.Errorf("--tsa-listen %s: %w", tsaFlags.listen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/", a)
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				env.Log.Error("local TSA stopped", "err", err)
			}
		}()
		stops = append(stops, func() { _ = srv.Close() })
		urls = []string{"http://" + ln.Addr().String() + "/"}
		env.Log.Info("local TSA ready", "url", urls[0], "certificate", a.Chain[0].Subject.CommonName)
	} else {
		urls = strings.Split(tsaFlags.urls, ",")
		if tsaFlags.roots != "" {
			b, err := os.ReadFile(tsaFlags.roots)
			if err != nil {
				return nil, nil, fmt.Errorf("--tsa-root: %w", err)
			}
			if roots, err = signing.ParseCerts(b); err != nil {
				return nil, nil, fmt.Errorf("--tsa-root %s: %w", tsaFlags.roots, err)
			}
		}
	}
	var opts []tsa.ClientOption
	if tsaFlags.tlsCA != "" {
		b, err := os.ReadFile(tsaFlags.tlsCA)
		if err != nil {
			stopAll()
			return nil, nil, fmt.Errorf("--tsa-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			stopAll()
			return nil, nil, fmt.Errorf("--tsa-ca %s: no PEM certificate", tsaFlags.tlsCA)
		}
		opts = append(opts, tsa.WithTLSRoots(pool))
	}
	client, err := tsa.NewClient(urls, roots, opts...)
	if err != nil {
		stopAll()
		return nil, nil, err
	}
	ts, err := audit.StartTimestamper(ctx, env.Service.Client.JetStream(), audit.TimestamperConfig{
		TSA: client, MaxUntimestamped: tsaFlags.maxUntimestamped, Retention: serveFlags.retention, Replicas: replicas, Logger: env.Log,
	})
	if err != nil {
		stopAll()
		return nil, nil, err
	}
	stops = append(stops, ts.Stop)
	activeTimestamper.Lock()
	activeTimestamper.t, activeTimestamper.roots = ts, roots
	activeTimestamper.Unlock()
	if env.Metrics != nil {
		registerTSAMetrics(env.Metrics.Registry(), ts)
	}
	return ts, stopAll, nil
}

// registerTSAMetrics puts on /metrics which TSA is in use and how far
// time-stamping lags.
func registerTSAMetrics(reg *prometheus.Registry, ts *audit.Timestamper) {
	reg.MustRegister(&tsaCollector{ts: ts})
}

type tsaCollector struct{ ts *audit.Timestamper }

var (
	tsaInfoDesc    = prometheus.NewDesc("docaxis_tsa_info", "The time-stamping authority in use (1), by URL and certificate name.", []string{"url", "tsa"}, nil)
	tsaLagDesc     = prometheus.NewDesc("docaxis_tsa_untimestamped_seconds", "How long the oldest checkpoint has waited for a time-stamp (0: none waits).", nil, nil)
	tsaRefuseDesc  = prometheus.NewDesc("docaxis_tsa_refusing", "1 while the bus refuses new documents because time-stamping failed past --max-untimestamped.", nil, nil)
	tsaTokensDesc  = prometheus.NewDesc("docaxis_tsa_tokens_total", "Time-stamp tokens stored since start.", nil, nil)
	tsaFailureDesc = prometheus.NewDesc("docaxis_tsa_failures_total", "Time-stamp attempts that failed on every TSA since start.", nil, nil)
	tsaLastDesc    = prometheus.NewDesc("docaxis_tsa_last_seq", "Chain sequence the last time-stamp covers.", nil, nil)
)

func (c *tsaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{tsaInfoDesc, tsaLagDesc, tsaRefuseDesc, tsaTokensDesc, tsaFailureDesc, tsaLastDesc} {
		ch <- d
	}
}

func (c *tsaCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.ts.Status()
	ch <- prometheus.MustNewConstMetric(tsaInfoDesc, prometheus.GaugeValue, 1, st.TSA.URL, st.TSA.TSA)
	lag := 0.0
	if !st.PendingSince.IsZero() {
		lag = time.Since(st.PendingSince).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(tsaLagDesc, prometheus.GaugeValue, lag)
	refusing := 0.0
	if st.Refusing {
		refusing = 1
	}
	ch <- prometheus.MustNewConstMetric(tsaRefuseDesc, prometheus.GaugeValue, refusing)
	ch <- prometheus.MustNewConstMetric(tsaTokensDesc, prometheus.CounterValue, float64(st.Tokens))
	ch <- prometheus.MustNewConstMetric(tsaFailureDesc, prometheus.CounterValue, float64(st.Failures))
	ch <- prometheus.MustNewConstMetric(tsaLastDesc, prometheus.GaugeValue, float64(st.LastSeq))
}
