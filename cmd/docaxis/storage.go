package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/s3"
	"github.com/spf13/cobra"
)

// flagS3 selects the S3 attachment store for serve and client commands.
var flagS3 string

func init() {
	rootCmd.PersistentFlags().StringVar(&flagS3, "s3", os.Getenv("DOCAXIS_S3"),
		"S3 attachment store http(s)://ACCESS_KEY:SECRET_KEY@HOST:PORT/BUCKET (env DOCAXIS_S3; keys from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY when absent)")
	gcCmd.Flags().DurationVar(&gcFlags.olderThan, "older-than", 0, "delete unreferenced objects older than this (e.g. 720h)")
	gcCmd.Flags().BoolVar(&gcFlags.dryRun, "dry-run", false, "list what would be deleted, delete nothing")
	gcCmd.Flags().BoolVar(&gcFlags.json, "json", false, "one JSON object per object considered, then the summary")
	_ = gcCmd.MarkFlagRequired("older-than")
	storageCmd.AddCommand(gcCmd)
	rootCmd.AddCommand(storageCmd)

}

// flagStore opens the attachment store the flags choose: S3 with --s3,
// nil for the bus's own.
func flagStore(ctx context.Context) (storage.Store, error) {
	if flagS3 == "" {
		return nil, nil
	}
	return openS3(ctx)
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
