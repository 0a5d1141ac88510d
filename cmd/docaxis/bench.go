package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/docaxis/docaxis/broker/bench"
	"github.com/docaxis/docaxis/signing"
	"github.com/spf13/cobra"
)

var benchFlags struct {
	n, latency, workers int
	rate                float64
	keyType             string
	json                bool
	cpuprofile          string
}

var benchCmd = &cobra.Command{
	Use:   "bench [--n N] [--rate R] [--json]",
	Short: "measure signed round trips against raw JetStream in the same run",
	Long: `Starts a fresh embedded bus in a temp dir (or, with --nats, sets one up on
an empty external cluster, removed afterwards) and measures N full round trips
(sign, publish to the mailbox, consume, verify, signed receipt back, the
sender's tracking updated), then raw JetStream publish + consume + ack of
messages of the same sizes, and the send→receipt latency at an offered rate.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		f := benchFlags
		if f.cpuprofile != "" {
			pf, err := os.Create(f.cpuprofile)
			if err != nil {
				return err
			}
			defer pf.Close()
			if err := pprof.StartCPUProfile(pf); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		// The other modes: the S3 store (--attachments), a country's
		// directory (--agencies).
		switch {
		case benchAttachments:
			return runAttachmentBench(cmd)
		case agencyBenchFlags.agencies > 0:
			return printAgencyBench(cmd)
		}
		cfg := bench.Config{N: f.n, Rate: f.rate, Latency: f.latency, Workers: f.workers, KeyType: signing.KeyType(f.keyType)}
		if err := benchCluster(cmd, &cfg); err != nil { // bench_cluster.go
			return err
		}
		res, err := bench.Run(cmd.Context(), cfg)
		if err != nil {
			return err
		}
		if f.json {
			return printJSON(cmd, res)
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "bus:                %s, %d replica(s)\n", res.Target, res.Replicas)
		fmt.Fprintf(w, "signed round trips: %d in %.2fs = %.0f/s (%s keys, %d CPUs)\n", res.N, res.Seconds, res.RoundtripsPerSec, res.KeyType, res.CPUs)
		fmt.Fprintf(w, "raw JetStream:      %d in %.2fs = %.0f/s (envelope %d B, receipt %d B)\n", res.N, res.RawSeconds, res.RawPerSec, res.EnvelopeBytes, res.ReceiptBytes)
		fmt.Fprintf(w, "ratio vs JetStream: %.3f\n", res.Ratio)
		fmt.Fprintf(w, "latency at %.0f/s offered (%d envelopes): p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n", res.Rate, res.LatencyN, res.P50ms, res.P90ms, res.P99ms, res.MaxMs)
		for _, st := range res.Stages {
			fmt.Fprintf(w, "  %-10s after the send: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms\n", st.Stage, st.P50ms, st.P90ms, st.P99ms)
		}
		return nil
	},
}

func init() {
	f := benchCmd.Flags()
	f.IntVar(&benchFlags.n, "n", 20000, "round trips in the throughput phase")
	f.Float64Var(&benchFlags.rate, "rate", 1000, "offered rate (per second) of the latency phase")
	f.IntVar(&benchFlags.latency, "latency-n", 3000, "envelopes in the latency phase")
	f.IntVar(&benchFlags.workers, "workers", 64, "concurrent senders in the throughput phase")
	f.StringVar(&benchFlags.keyType, "key-type", "ecdsa", "agency key type: ecdsa, ed25519, rsa")
	f.BoolVar(&benchFlags.json, "json", false, "print one JSON object")
	f.StringVar(&benchFlags.cpuprofile, "cpuprofile", "", "write a CPU profile of the run to FILE")
	rootCmd.AddCommand(benchCmd)
}
