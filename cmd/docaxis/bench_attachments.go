package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/docaxis/docaxis/storage/s3"
	"github.com/spf13/cobra"
)

// `docaxis bench --attachments`: the S3 store against plain minio-go.

var (
	benchAttachments    bool
	benchAttachmentSize int64
)

// runAttachmentBench is bench --attachments.
func runAttachmentBench(cmd *cobra.Command) error {
	if flagS3 == "" {
		return fmt.Errorf("bench --attachments needs --s3 URL of an S3 server (e.g. a local MinIO)")
	}
	cfg, err := s3.ParseURL(flagS3)
	if err != nil {
		return fmt.Errorf("--s3: %w", err)
	}
	res, err := s3.Bench(cmd.Context(), cfg, benchAttachmentSize)
	if err != nil {
		return err
	}
	rss := peakRSS()
	if benchFlags.json {
		return printJSON(cmd, map[string]any{
			"size": res.Size, "store_mib_per_sec": res.StoreMiBps, "minio_go_mib_per_sec": res.RawMiBps,
			"ratio": res.Ratio, "peak_rss_bytes": rss,
		})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s; peak RSS %s\n", res, human(rss))
	return nil
}

// peakRSS reads the process's high-water resident set size (Linux).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

func init() {
	benchCmd.Flags().BoolVar(&benchAttachments, "attachments", false, "measure the S3 store (--s3) against plain minio-go PutObject instead")
	benchCmd.Flags().Int64Var(&benchAttachmentSize, "size", 1<<30, "bytes per upload with --attachments")
}
