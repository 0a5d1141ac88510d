package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/httpapi"
)

// HTTP API and clerks' page, started by serve when --http is set.

var httpFlags struct {
	maxRequest     int64
	maxAttachment  int64
	maxAttachments int
	rate           float64
	shutdownGrace  time.Duration
	bodyTimeout    time.Duration
	minBodyRate    int64
	eventStreams   int
}

func init() {
	f := serveCmd.Flags()
	f.Int64Var(&httpFlags.maxRequest, "http-max-request", 0, "largest HTTP request body in bytes (default 2 GiB)")
	f.Int64Var(&httpFlags.maxAttachment, "http-max-attachment", 0, "largest attachment sent over HTTP in bytes (default 1 GiB)")
	f.IntVar(&httpFlags.maxAttachments, "http-max-attachments", 0, "most attachments per envelope sent over HTTP (default 100)")
	f.Float64Var(&httpFlags.rate, "http-rate", 0, "HTTP requests per second allowed per agency (default 20; negative: no limit)")
	f.DurationVar(&httpFlags.shutdownGrace, "http-shutdown-grace", 2*time.Minute, "how long shutdown waits for HTTP uploads in flight")
	f.DurationVar(&httpFlags.bodyTimeout, "http-body-timeout", 0, "time a request body may take before --http-min-body-rate applies, and the longest pause in one (default 30s)")
	f.Int64Var(&httpFlags.minBodyRate, "http-min-body-rate", 0, "slowest a request body may arrive after --http-body-timeout, in bytes per second (default 16384)")
	f.IntVar(&httpFlags.eventStreams, "http-max-event-streams", 0, "event streams (GET /v1/events) open at once per API token (default 8)")
}

// startHTTP serves the HTTP API and the page on env.HTTP. Its stop func
// runs before the bus stops, so uploads in flight finish first.
func startHTTP(ctx context.Context, env *serveEnv) (func(), error) {
	if env.HTTP == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", env.HTTP)
	if err != nil {
		if !env.Cmd.Flags().Changed("http") {
			// The default address is taken: the bus still serves NATS.
			env.Log.Warn("HTTP API not started: default address in use (set --http)", "addr", env.HTTP, "err", err)
			return nil, nil
		}
		return nil, fmt.Errorf("--http %s: %w", env.HTTP, err)
	}
	// The bus's own store (S3 with --s3): uploads over HTTP, and the
	// removal of a refused request's, go where recipients read from.
	c, err := broker.New(ctx, env.Service.Client.Conn(), broker.WithKeystore(env.Keystore), broker.WithTrust(env.Trust), broker.WithLogger(env.Log),
		broker.WithStore(env.Service.Client.Store()))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("HTTP API: %w", err)
	}
	replicas := serveFlags.replicas
	if replicas == 0 && serveFlags.nats != "" {
		replicas = 3
	}
	tokens, err := httpapi.OpenTokens(ctx, c.JetStream(), httpapi.TokensConfig{Replicas: replicas})
	if err != nil {
		ln.Close()
		c.Close()
		return nil, err
	}
	vxpAPI, err := vxpHandler(ctx, env, c)
	if err != nil {
		ln.Close()
		c.Close()
		return nil, err
	}
	opTokens, err := httpapi.OpenOperatorTokens(ctx, c.JetStream(), httpapi.TokensConfig{Replicas: replicas})
	if err != nil {
		ln.Close()
		c.Close()
		return nil, err
	}
	// No /metrics here: it is not for API token holders (serve_metrics.go).
	srv, err := httpapi.New(httpapi.Config{
		VXP:      vxpAPI,
		Client:   c,
		Auth:     tokens,
		Operator: operatorConfig(env, opTokens),
		Logger:   env.Log,
		Evidence: newServeEvidence(c),
		Version:  buildInfo().Version,
		Limits: httpapi.Limits{
			MaxRequestBytes:    httpFlags.maxRequest,
			MaxAttachmentBytes: httpFlags.maxAttachment,
			MaxAttachments:     httpFlags.maxAttachments,
			Rate:               httpFlags.rate,
			BodyTimeout:        httpFlags.bodyTimeout,
			MinBodyRate:        httpFlags.minBodyRate,
			MaxEventStreams:    httpFlags.eventStreams,
		},
	})
	if err != nil {
		ln.Close()
		c.Close()
		return nil, err
	}
	scheme := "http"
	tc, err := serverTLS(env.Keystore)
	if err != nil {
		ln.Close()
		c.Close()
		return nil, err
	}
	if tc != nil {
		ln, scheme = tls.NewListener(ln, tc), "https"
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil {
			env.Log.Error("HTTP server stopped", "err", err)
		}
	}()
	url := scheme + "://" + ln.Addr().String()
	env.Log.Info("HTTP API and web page ready", "url", url)
	fmt.Fprintf(env.Cmd.ErrOrStderr(), "HTTP API and clerks' page on %s (operator's page on %s/operator)\n", url, url)
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), httpFlags.shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
			env.Log.Warn("HTTP shutdown: requests still in flight were cut", "err", err)
		}
		<-done
		c.Close()
	}, nil
}
