package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/signing"
	"github.com/spf13/cobra"
)

// The audit chain runs inside serve; replay and export read the bus;
// verify needs no bus at all.

var auditServeFlags struct {
	interval time.Duration
}

var auditFlags struct {
	since, until, agency string
	json                 bool
	attachments          bool
	out                  string
	ca                   string
	requireCheckpoint    bool
	noChain              bool
}

var auditHops bool

// auditLimits bound what `audit verify` reads of a bundle (zero fields:
// the defaults).
var auditLimits audit.VerifyLimits

var auditCmd = &cobra.Command{
	Use:   "audit",
	Short: "replay, export and verify the tamper-evident record",
	Long: `The bus links every envelope and status it stores into a hash chain and
signs checkpoints of the chain's head with its own audit key (under
<home>/audit). These commands replay the record re-verified, export evidence
bundles, and verify bundles offline. The bundle format is described in
broker/audit/BUNDLE.md.

Times (--since, --until) are RFC 3339 (2025-03-01T08:00:00+07:00), a date
(2025-03-01, local midnight) or a duration meaning that long ago (24h).`,
}

var auditReplayCmd = &cobra.Command{
	Use:   "replay --since TIME [--until TIME] [--agency CODE] [--json]",
	Short: "print the record from a time on, every signature and certificate re-verified as the bus judged it",
	Long: `Print the records stored from --since up to --until (default: the last one
stored when the replay starts), in order, each re-verified as the
recipient's mailbox judged it when the bus recorded it (the envelope's
created time at most 24h before and 10 min after that, the certificate
chain and revocations at the created time) and checked against its link in
the audit chain, with verified true/false and the reason. --agency keeps that agency's traffic in both
directions. The replay reads through an ephemeral consumer: live mailboxes
are not affected. A record that fails does not change the exit status; the
summary on stderr counts them. The audit chain is checked as it is read
(each link's hash, its prev against the link before, its start at a valid
signed checkpoint, the checkpoints along it): a break fails the record
after it, is named on stderr and makes the exit status 1; the links no
checkpoint covers yet are named too.`,
	Args: cobra.NoArgs,
	RunE: runAuditReplay,
}

var auditExportCmd = &cobra.Command{
	Use:   "export --since TIME [--until TIME] [--agency CODE] [--attachments] --out FILE.zip",
	Short: "write an evidence bundle that verifies offline",
	Args:  cobra.NoArgs,
	RunE:  runAuditExport,
}

var auditVerifyCmd = &cobra.Command{
	Use:   "verify FILE.zip",
	Short: "verify an evidence bundle offline, with no server",
	Long: `Verify an evidence bundle offline: file digests, every record against its
chain link, the chain's continuity, the signed checkpoints, every record's
signature and certificate chain as the bus judged it when it recorded it,
and that the range is complete. Exits non-zero naming the first bad record.
--ca pins the trust root instead of the CA the bundle carries.

A bundle comes from outside: before decompressing anything, verify refuses
one over its limits (--max-*), one whose entries overlap or whose names are
unsafe (.., absolute, \, control characters, nested deeper than dir/file),
naming the entry. Raise a limit for an honest bundle that needs it (0: the
default, negative: no limit).`,
	Args: cobra.ExactArgs(1),
	RunE: runAuditVerify,
}

func init() {
	serveCmd.Flags().DurationVar(&auditServeFlags.interval, "checkpoint-interval", time.Minute, "how often the bus signs a checkpoint of the audit chain (when it moved)")

	for _, c := range []*cobra.Command{auditReplayCmd, auditExportCmd} {
		f := c.Flags()
		f.StringVar(&auditFlags.since, "since", "", "first stored time included (RFC 3339, YYYY-MM-DD or a duration ago)")
		f.StringVar(&auditFlags.until, "until", "", "first stored time excluded (default: up to the last record now)")
		f.StringVar(&auditFlags.agency, "agency", "", "only this agency's traffic, both directions")
		f.BoolVar(&auditFlags.json, "json", false, "print JSON")
		_ = c.MarkFlagRequired("since")
	}
	auditReplayCmd.Flags().BoolVar(&auditFlags.noChain, "no-chain", false, "do not check records against the audit chain")
	auditReplayCmd.Flags().BoolVar(&auditHops, "hops", false, "show and verify the federation trace (buses crossed) of each record")
	auditExportCmd.Flags().BoolVar(&auditFlags.attachments, "attachments", false, "include the attachments")
	auditExportCmd.Flags().StringVar(&auditFlags.out, "out", "", "bundle file to write (.zip)")
	_ = auditExportCmd.MarkFlagRequired("out")
	auditVerifyCmd.Flags().StringVar(&auditFlags.ca, "ca", "", "PEM file of the CA to trust instead of the bundle's own")
	auditVerifyCmd.Flags().BoolVar(&auditFlags.requireCheckpoint, "require-checkpoint", false, "fail when no signed checkpoint covers the end of the range")
	auditVerifyCmd.Flags().BoolVar(&auditFlags.json, "json", false, "print the report as JSON")
	vf := auditVerifyCmd.Flags()
	vf.IntVar(&auditLimits.Entries, "max-entries", audit.DefaultMaxEntries, "most files the bundle may hold")
	vf.Int64Var(&auditLimits.EntrySize, "max-entry-size", audit.DefaultMaxEntrySize, "largest file but an attachment, bytes uncompressed (read into memory)")
	vf.Int64Var(&auditLimits.AttachmentSize, "max-attachment-size", audit.DefaultMaxAttachmentSize, "largest attachment, bytes uncompressed (streamed)")
	vf.Int64Var(&auditLimits.TotalSize, "max-total-size", audit.DefaultMaxTotalSize, "most bytes uncompressed in all")
	vf.Int64Var(&auditLimits.Ratio, "max-ratio", audit.DefaultMaxRatio, "most times their compressed size the files read into memory may grow")
	auditCmd.AddCommand(auditReplayCmd, auditExportCmd, auditVerifyCmd)
	rootCmd.AddCommand(auditCmd)
}

// startAuditChainer runs the chainer for as long as serve runs; its stop
// signs the shutdown checkpoint.
func startAuditChainer(ctx context.Context, env *serveEnv) (func(), error) {
	ca, err := env.Keystore.CA()
	if err != nil {
		return nil, err
	}
	key, err := audit.OpenKey(filepath.Join(env.Keystore.Dir, "audit"), ca)
	if err != nil {
		return nil, err
	}
	replicas := serveFlags.replicas
	if replicas == 0 && serveFlags.nats != "" {
		replicas = 3
	}
	// A serve started while its cluster elects leaders (a node just
	// restarted) waits for them this long: the time-stamper and the
	// chainer ask again through the failover themselves.
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	ts, stopTS, err := startTimestamping(sctx, env, ca, replicas)
	if err != nil {
		return nil, err
	}
	c, err := audit.StartChainer(sctx, env.Service.Client.JetStream(), audit.ChainerConfig{
		Key:          key,
		Interval:     auditServeFlags.interval,
		Retention:    serveFlags.retention,
		Replicas:     replicas,
		Logger:       env.Log,
		OnCheckpoint: ts.Checkpointed,
	})
	if err != nil {
		stopTS()
		return nil, err
	}
	return func() {
		// The time-stamper after the chainer: the shutdown checkpoint
		// still gets its chance at a token.
		defer stopTS()
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cp, err := c.Stop(sctx)
		switch {
		case err != nil:
			env.Log.Error("audit chainer stop", "err", err)
		case cp != nil:
			env.Log.Info("audit checkpoint at shutdown", "seq", cp.Seq, "head", cp.Head)
		}
	}, nil
}

func auditQuery() (audit.Query, error) {
	now := time.Now()
	since, err := audit.ParseTime(auditFlags.since, now)
	if err != nil {
		return audit.Query{}, fmt.Errorf("--since: %w", err)
	}
	until, err := audit.ParseTime(auditFlags.until, now)
	if err != nil {
		return audit.Query{}, fmt.Errorf("--until: %w", err)
	}
	if !until.IsZero() && !until.After(since) {
		return audit.Query{}, fmt.Errorf("--until %s is not after --since %s", until.Format(time.RFC3339), since.Format(time.RFC3339))
	}
	return audit.Query{Since: since, Until: until, Agency: auditFlags.agency, SkipChain: auditFlags.noChain}, nil
}

func auditReader(cmd *cobra.Command) (*audit.Reader, func(), error) {
	c, err := connect(cmd)
	if err != nil {
		return nil, nil, err
	}
	r, err := audit.NewReader(c.JetStream(), audit.ReaderConfig{Verifier: c.Verifier(), Store: c.Store()})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return r, c.Close, nil
}

// replayProgress draws a progress line on stderr once a replay has run for
// a second: redrawn in place on a terminal, a line every 5s otherwise.
func replayProgress(w io.Writer, what string) (func(done, total uint64), func()) {
	start := time.Now()
	term := isTerminal(w)
	var mu sync.Mutex
	var last time.Time
	shown := false
	update := func(done, total uint64) {
		mu.Lock()
		defer mu.Unlock()
		el := time.Since(start)
		if el < time.Second || (!term && time.Since(last) < 5*time.Second) {
			return
		}
		last, shown = time.Now(), true
		rate := float64(done) / el.Seconds()
		line := fmt.Sprintf("%s: %d/%d records, %.0f/s", what, done, total, rate)
		if term {
			fmt.Fprintf(w, "\r%s ", line)
		} else {
			fmt.Fprintln(w, line)
		}
	}
	end := func() {
		mu.Lock()
		defer mu.Unlock()
		if shown && term {
			fmt.Fprintln(w)
		}
	}
	return update, end
}

func runAuditReplay(cmd *cobra.Command, _ []string) error {
	q, err := auditQuery()
	if err != nil {
		return err
	}
	r, closeFn, err := auditReader(cmd)
	if err != nil {
		return err
	}
	defer closeFn()
	progress, endProgress := replayProgress(cmd.ErrOrStderr(), "replay")
	q.Progress = progress
	out := cmd.OutOrStdout()
	if !auditFlags.json {
		fmt.Fprintf(out, "%-8s %-24s %-8s %-15s %-15s %-36s %-12s %-8s %s\n", "SEQ", "STORED", "TYPE", "FROM", "TO", "ID", "STATE", "VERIFIED", "REASON")
	}
	st, err := r.Replay(cmd.Context(), q, func(rec *audit.Record) error {
		// Copies that crossed other buses carry signed trace entries
		// (read again per record: asked for with --hops).
		var hops []federation.Hop
		var herr error
		if auditHops {
			hops, herr = r.Hops(cmd.Context(), rec)
		}
		if auditFlags.json {
			out := struct {
				*audit.Record
				Hops      []federation.Hop `json:"hops,omitempty"`
				HopsError string           `json:"hops_error,omitempty"`
			}{Record: rec, Hops: hops}
			if herr != nil {
				out.HopsError = herr.Error()
			}
			return printJSON(cmd, out)
		}
		state := string(rec.State)
		if state == "" {
			state = string(rec.Kind)
		}
		_, err := fmt.Fprintf(out, "%-8d %-24s %-8s %-15s %-15s %-36s %-12s %-8v %s\n", rec.Seq, rec.Stored.Local().Format("2006-01-02 15:04:05.000"),
			rec.Type, rec.From, rec.To, orDash(rec.ID), orDash(state), rec.Verified, rec.Reason)
		if err == nil && (len(hops) > 0 || herr != nil) {
			suffix := ""
			if herr != nil {
				suffix = " (" + herr.Error() + ")"
			}
			_, err = fmt.Fprintf(out, "         hops: %s%s\n", audit.FormatHops(hops), suffix)
		}
		return err
	})
	endProgress()
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%d records: %d verified, %d failed (%d missing from the record), %d not yet chained; %.0f records/s\n",
		st.Records, st.Verified, st.Failed, st.Missing, st.Pending, st.RecordsPerSecond())
	for _, n := range st.ChainNotes {
		fmt.Fprintln(cmd.ErrOrStderr(), "chain:", n)
	}
	if st.Broken > 0 {
		// Unlike a record on record as invalid, a broken chain is
		// tampering with the record itself.
		return &exitError{code: 1, err: fmt.Errorf("%w: %d breaks, first: %s", audit.ErrChainBroken, st.Broken, st.ChainNotes[0])}
	}
	return nil
}

func runAuditExport(cmd *cobra.Command, _ []string) error {
	q, err := auditQuery()
	if err != nil {
		return err
	}
	r, closeFn, err := auditReader(cmd)
	if err != nil {
		return err
	}
	defer closeFn()
	progress, endProgress := replayProgress(cmd.ErrOrStderr(), "export")
	q.Progress = progress
	tmp := auditFlags.out + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	m, err := r.Export(cmd.Context(), audit.ExportOptions{Query: q, Attachments: auditFlags.attachments}, f)
	endProgress()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, auditFlags.out)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	for _, w := range m.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
	}
	if auditFlags.json {
		return printJSON(cmd, map[string]any{"file": auditFlags.out, "records": len(m.Records), "links": m.Links,
			"checkpoints": m.Checkpoints, "attachments": len(m.Attachments), "covered": m.Covered, "warnings": m.Warnings})
	}
	covered := "covered by a signed checkpoint"
	if !m.Covered {
		covered = "NOT covered by a signed checkpoint yet"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d records, %d chain links (seq %d to %d), %d checkpoints, %d attachments; %s\n",
		auditFlags.out, len(m.Records), m.Links.Count, m.Links.First, m.Links.Last, len(m.Checkpoints), len(m.Attachments), covered)
	return nil
}

func runAuditVerify(cmd *cobra.Command, args []string) error {
	o := audit.VerifyOptions{RequireCoverage: auditFlags.requireCheckpoint, Limits: auditLimits}
	if auditTSARoot != "" {
		b, err := os.ReadFile(auditTSARoot)
		if err != nil {
			return fmt.Errorf("--tsa-root: %w", err)
		}
		if o.TSARoots, err = signing.ParseCerts(b); err != nil {
			return fmt.Errorf("--tsa-root %s: %w", auditTSARoot, err)
		}
	}
	if auditFlags.ca != "" {
		b, err := os.ReadFile(auditFlags.ca)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		if o.Roots, err = signing.ParseCerts(b); err != nil {
			return fmt.Errorf("--ca %s: %w", auditFlags.ca, err)
		}
	}
	rep, err := audit.VerifyBundleFile(cmd.Context(), args[0], o)
	var p *audit.Problem
	if err != nil && !errors.As(err, &p) {
		return err
	}
	if auditFlags.json {
		if perr := printJSON(cmd, rep); perr != nil {
			return perr
		}
	} else {
		printVerifyReport(cmd.OutOrStdout(), args[0], rep)
	}
	if err != nil {
		return &exitError{code: 1, err: fmt.Errorf("%s does not verify: %w", args[0], err)}
	}
	return nil
}

func printVerifyReport(w io.Writer, file string, rep *audit.Report) {
	q := rep.Query
	rng := "from the beginning"
	if !q.Since.IsZero() {
		rng = "from " + q.Since.Format(time.RFC3339)
	}
	if !q.Until.IsZero() {
		rng += " until " + q.Until.Format(time.RFC3339)
	}
	if q.Agency != "" {
		rng += ", agency " + q.Agency
	}
	fmt.Fprintf(w, "bundle %s (%s), %s\n", file, rep.Format, rng)
	fmt.Fprintf(w, "trust root SHA-256: %s\n", strings.Join(rep.CAFingerprints, ", "))
	fmt.Fprintf(w, "records: %d, %d verified, %d on record as invalid\n", rep.Records, rep.Verified, rep.RecordedInvalid)
	if rep.BusBound > 0 {
		fmt.Fprintf(w, "records verified with a certificate that names no agency, bound to it on the bus's word only: %d (see the notes)\n", rep.BusBound)
	}
	fmt.Fprintf(w, "chain: %d links, seq %d to %d\n", rep.Links, rep.FirstLink, rep.LastLink)
	cov := "the range is covered"
	if !rep.Covered {
		cov = "the range is NOT covered"
	}
	fmt.Fprintf(w, "checkpoints: %d valid, covering through seq %d: %s\n", rep.Checkpoints, rep.CoveredThrough, cov)
	if rep.Attachments > 0 {
		fmt.Fprintf(w, "attachments: %d\n", rep.Attachments)
	}
	for _, t := range rep.Timestamps {
		fmt.Fprintf(w, "time-stamp: %s by %q at %s covers the chain through seq %d\n", t.File, t.TSA, t.Time.Format(time.RFC3339), t.Seq)
	}
	if len(rep.TSAFingerprints) > 0 {
		fmt.Fprintf(w, "TSA root SHA-256: %s\n", strings.Join(rep.TSAFingerprints, ", "))
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(w, "PROBLEM:", p.Error())
	}
	if len(rep.Problems) == 0 {
		fmt.Fprintln(w, "OK: the bundle verifies")
	}
}
