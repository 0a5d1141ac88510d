// Command auditor-replay is what an auditor does with docaxis: replay one
// agency's traffic over a time range, every signature and certificate
// re-verified as of its signing time and checked against the bus's audit
// chain; export the same range as an evidence bundle; and verify that
// bundle offline, as a court's expert would, against the CA alone.
//
// Against the bus of `make run`, after dms-publisher's commands, on the
// bus's machine (it reads the whole record with the bus's own credentials,
// found in the home):
//
//	go run ./examples/auditor-replay --home .docaxis --since 24h --agency 000.00.00.H41 --out evidence.zip
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "auditor-replay:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("auditor-replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	home := fs.String("home", envOr("DOCAXIS_HOME", ".docaxis"), "docaxis home holding the CA certificate (ca/ca.crt) (env DOCAXIS_HOME)")
	server := fs.String("server", envOr("DOCAXIS_SERVER", "nats://127.0.0.1:4222"), "NATS URL of the bus (env DOCAXIS_SERVER)")
	creds := fs.String("creds", "", "NATS credentials that may read the whole record: the bus's own (default HOME/nats/admin.creds when present)")
	sinceFlag := fs.String("since", "24h", "first stored time (RFC 3339, YYYY-MM-DD or a duration ago)")
	untilFlag := fs.String("until", "", "first stored time excluded (default: up to now)")
	agency := fs.String("agency", "", "only this agency's traffic, both directions")
	out := fs.String("out", "evidence.zip", "evidence bundle to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	now := time.Now()
	since, err := audit.ParseTime(*sinceFlag, now)
	if err != nil {
		return err
	}
	until, err := audit.ParseTime(*untilFlag, now)
	if err != nil {
		return err
	}

	// The auditor trusts the CA, not the bus: the same root verifies the
	// replay and, later, the bundle offline.
	ks, err := signing.OpenKeystore(*home)
	if err != nil {
		return err
	}
	ca, err := ks.CACert()
	if err != nil {
		return fmt.Errorf("no CA certificate under %s: %w", filepath.Join(*home, "ca"), err)
	}
	// Replay reads every agency's traffic: no agency's credentials allow
	// that, the bus's own do.
	opts := []broker.Option{broker.WithTrust(signing.NewTrust(ca))}
	if *creds == "" {
		if path := filepath.Join(*home, "nats", "admin.creds"); fileExists(path) {
			*creds = path
		}
	}
	if *creds != "" {
		opts = append(opts, broker.WithNATSOptions(nats.UserCredentials(*creds)))
	}
	c, err := broker.Connect(ctx, *server, opts...)
	if err != nil {
		return fmt.Errorf("%w (a bus with authentication takes the bus's credentials: -creds HOME/nats/admin.creds)", err)
	}
	defer c.Close()
	r, err := audit.NewReader(c.JetStream(), audit.ReaderConfig{Verifier: c.Verifier(), Store: c.Store()})
	if err != nil {
		return err
	}

	// 1. Replay, re-verified.
	q := audit.Query{Since: since, Until: until, Agency: *agency}
	st, err := r.Replay(ctx, q, func(rec *audit.Record) error {
		_, err := fmt.Fprintf(stdout, "%6d %s %-8s %s -> %s %s %-10s verified=%v chain=%s %s\n", rec.Seq, rec.Stored.Format(time.RFC3339),
			rec.Type, rec.From, rec.To, rec.ID, rec.State, rec.Verified, rec.Chain, rec.Reason)
		return err
	})
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	fmt.Fprintf(stdout, "replayed %d records: %d verified, %d failed, %d missing\n", st.Records, st.Verified, st.Failed, st.Missing)
	for _, n := range st.ChainNotes {
		fmt.Fprintln(stdout, "chain:", n)
	}
	if st.Broken > 0 {
		// Records removed, inserted or changed with their links: the
		// record itself was tampered with, whatever verified.
		return fmt.Errorf("replay: the audit chain is broken in %d places", st.Broken)
	}

	// 2. Export the same range as evidence.
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	m, err := r.Export(ctx, audit.ExportOptions{Query: q, Attachments: true}, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	for _, w := range m.Warnings {
		fmt.Fprintln(stderr, "warning:", w)
	}
	fmt.Fprintf(stdout, "exported %d records, %d links, %d checkpoints to %s\n", len(m.Records), m.Links.Count, len(m.Checkpoints), *out)

	// 3. Verify offline: no connection is used from here on.
	rep, err := audit.VerifyBundleFile(ctx, *out, audit.VerifyOptions{Roots: []*x509.Certificate{ca}})
	var p *audit.Problem
	if errors.As(err, &p) {
		return fmt.Errorf("evidence does not verify: %w", p)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bundle verifies offline: %d records, chain seq %d to %d, covered by a checkpoint: %v\n",
		rep.Records, rep.FirstLink, rep.LastLink, rep.Covered)
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// envOr is the environment variable name, or def when it is unset.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
