package main

import (
	"context"
	"fmt"
	"github.com/docaxis/docaxis/broker"
	"os"
	"strings"
	"time"

	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/s3"
	"github.com/spf13/cobra"
)

// flagS3 selects the S3 attachment store for serve and client commands.
var flagS3 string

func init() {
	rootCmd.PersistentFlags().StringVar(&flagS3, "s3", os.Getenv("DOCAXIS_S3"),
		"S3 attachment store http(s)://ACCESS_KEY:SECRET_KEY@HOST:PORT/BUCKET (env DOCAXIS_S3; keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY when absent)")
	storeHooks = append(storeHooks, func(ctx context.Context, cmd *cobra.Command) (storage.Store, error) {
		if flagS3 == "" {
			return nil, nil
		}
		return openS3(ctx)
	})
	gcCmd.Flags().DurationVar(&gcFlags.olderThan, "older-than", 0, "delete unreferenced objects older than this (e.g. 720h)")
	gcCmd.Flags().BoolVar(&gcFlags.dryRun, "dry-run", false, "list what would be deleted, delete nothing")
	gcCmd.Flags().BoolVar(&gcFlags.json, "json", false, "one JSON object per object considered, then the summary")
	_ = gcCmd.MarkFlagRequired("older-than")
	storageCmd.AddCommand(gcCmd)
	rootCmd.AddCommand(storageCmd)

	benchCmd.Flags().BoolVar(&benchAttachments, "attachments", false, "measure the S3 store (--s3) against plain minio-go PutObject instead")
	benchCmd.Flags().Int64Var(&benchAttachmentSize, "size", 1<<30, "bytes per upload with --attachments")
	benchModes = append(benchModes, runAttachmentBench)
}

func openS3(ctx context.Context) (storage.Store, error) {
	cfg, err := s3.ParseURL(flagS3)
	if err != nil {
		return nil, fmt.Errorf("--s3: %w", err)
	}
	return s3.New(ctx, cfg)
}

var storageCmd = &cobra.Command{Use: "storage", Short: "attachment store maintenance"}

var gcFlags struct {
	olderThan time.Duration
	dryRun    bool
	json      bool
}

var gcCmd = &cobra.Command{
	Use:   "gc --older-than DURATION [--dry-run]",
	Short: "delete attachments no retained envelope references (never a referenced one)",
	Args:  cobra.NoArgs,
	RunE: withClient(func(cmd *cobra.Command, _ []string, c *broker.Client) error {
		ctx := cmd.Context()
		refs, err := c.ReferencedAttachments(ctx)
		if err != nil {
			return err
		}
		res, err := storage.GC(ctx, c.Store(), storage.GCOptions{
			Referenced: func(key string) bool { return refs[strings.TrimPrefix(key, storage.KeyPrefix)] },
			OlderThan:  gcFlags.olderThan,
			DryRun:     gcFlags.dryRun,
			OnObject: func(obj storage.Object, deleted bool) {
				if !deleted {
					return
				}
				if gcFlags.json {
					_ = printJSON(cmd, obj)
					return
				}
				verb := "deleted"
				if gcFlags.dryRun {
					verb = "would delete"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s %s\n", verb, obj.Key, human(obj.Size), obj.ModTime.Local().Format("2006-01-02 15:04"))
			},
		})
		if err != nil {
			return err
		}
		if gcFlags.json {
			return printJSON(cmd, res)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%d objects: %d referenced, %d recent, %d unreferenced (%s), %d upload leftovers swept\n",
			res.Scanned, res.Referenced, res.Recent, res.Deleted, human(res.DeletedBytes), res.Swept)
		return nil
	}),
}

var (
	benchAttachments    bool
	benchAttachmentSize int64
)

func runAttachmentBench(cmd *cobra.Command) (bool, error) {
	if !benchAttachments {
		return false, nil
	}
	if flagS3 == "" {
		return true, fmt.Errorf("bench --attachments needs --s3 URL of an S3 server (e.g. a local MinIO)")
	}
	cfg, err := s3.ParseURL(flagS3)
	if err != nil {
		return true, fmt.Errorf("--s3: %w", err)
	}
	res, err := s3.Bench(cmd.Context(), cfg, benchAttachmentSize)
	if err != nil {
		return true, err
	}
	rss := peakRSS()
	if benchFlags.json {
		return true, printJSON(cmd, map[string]any{
			"size": res.Size, "store_mib_per_sec": res.StoreMiBps, "minio_go_mib_per_sec": res.RawMiBps,
			"ratio": res.Ratio, "peak_rss_bytes": rss,
		})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s; peak RSS %s\n", res, human(rss))
	return true, nil
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
