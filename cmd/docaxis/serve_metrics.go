package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Prometheus /metrics, on a listener of its own: the figures (agencies,
// their traffic and lags) are not for every holder of an API token, nor
// for anyone who reaches the API's port. Off unless --metrics is set; a
// listener beyond loopback needs a token.

var metricsFlags struct {
	addr      string
	tokenFile string
}

// minMetricsToken keeps a guessable word out of the token file.
const minMetricsToken = 16

func init() {
	f := serveCmd.Flags()
	f.StringVar(&metricsFlags.addr, "metrics", envOr("DOCAXIS_METRICS", ""),
		"serve Prometheus /metrics on its own listener HOST:PORT (empty: off; env DOCAXIS_METRICS)")
	f.StringVar(&metricsFlags.tokenFile, "metrics-token-file", envOr("DOCAXIS_METRICS_TOKEN_FILE", ""),
		"file holding the bearer token /metrics then requires; needed unless --metrics is a loopback address (env DOCAXIS_METRICS_TOKEN_FILE)")
}

// startMetrics serves /metrics on --metrics.
func startMetrics(_ context.Context, env *serveEnv) (func(), error) {
	token, err := metricsToken(metricsFlags.addr, metricsFlags.tokenFile)
	if err != nil || metricsFlags.addr == "" || env.Metrics == nil {
		return nil, err
	}
	if err := registerBuildInfo(env.Metrics); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", metricsFlags.addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", metricsFlags.addr, err)
	}
	tc, err := serverTLS(env.Keystore)
	if err != nil {
		ln.Close()
		return nil, err
	}
	scheme := "http"
	if tc != nil {
		ln, scheme = tls.NewListener(ln, tc), "https"
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsAuth(token, env.Metrics.Handler()))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			env.Log.Error("metrics server stopped", "err", err)
		}
	}()
	url := scheme + "://" + ln.Addr().String() + "/metrics"
	env.Log.Info("metrics ready", "url", url, "token", token != "")
	fmt.Fprintf(env.Cmd.ErrOrStderr(), "Prometheus metrics on %s\n", url)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// metricsToken reads the token /metrics requires ("" for none), and
// refuses a listener beyond loopback without one.
func metricsToken(addr, file string) (string, error) {
	if addr == "" {
		if file != "" {
			return "", errors.New("--metrics-token-file without --metrics: set --metrics HOST:PORT to serve /metrics")
		}
		return "", nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--metrics %q: %w", addr, err)
	}
	if file == "" {
		if !isLoopback(host) {
			return "", fmt.Errorf("--metrics %s listens beyond this machine: set --metrics-token-file so that /metrics needs a token, or listen on 127.0.0.1", addr)
		}
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--metrics-token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < minMetricsToken || strings.ContainsAny(token, " \t\r\n") {
		return "", fmt.Errorf("--metrics-token-file %s: want one token of at least %d characters without spaces (e.g. from: openssl rand -hex 32)", file, minMetricsToken)
	}
	return token, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// metricsAuth lets through requests with "Authorization: Bearer token"
// (any request when token is "").
func metricsAuth(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="docaxis metrics"`)
			http.Error(w, "missing or wrong bearer token for /metrics (the one in --metrics-token-file)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
