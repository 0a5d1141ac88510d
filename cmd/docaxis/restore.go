package main

import (
	"fmt"

	"github.com/docaxis/docaxis/broker/backup"
	"github.com/spf13/cobra"
)

// `docaxis restore`: a backup into a fresh home (see backup.go).

var restoreCmd = &cobra.Command{
	Use:   "restore FILE --home DIR [--identity KEY_FILE]",
	Short: "restore a backup into a fresh home (checked whole before anything is written)",
	Long: `Restore a backup made by 'docaxis backup' into --home, which must be missing
or empty. The archive is checked whole first (format version, every entry's
SHA-256, nothing missing): a damaged, cut-off or newer backup is refused
before anything is written. The first 'docaxis serve' on the restored home
rebuilds tracking from the record and links the audit chain up to it.
With --s3, attachments of an S3 store go to that store. An encrypted backup
(backup --recipient) needs --identity, the key file it was encrypted to.
With --ca, the bus's CA certificate kept apart from the backups, an archive
that bus's audit key did not sign, or that would restore another CA, is
refused: someone who can write where backups are kept cannot make one.`,
	Args: cobra.ExactArgs(1),
	RunE: runRestore,
}

func runRestore(cmd *cobra.Command, args []string) error {
	ctx := cmd.Context()
	store, err := flagStore(ctx)
	if err != nil {
		return err
	}
	ids, err := backupIdentities()
	if err != nil {
		return err
	}
	ca, err := backupTrustCA()
	if err != nil {
		return err
	}
	bar := newGrowingBar(cmd, "restore", backupFlags.json)
	m, err := backup.Restore(ctx, args[0], backup.Target{Home: flagHome, Store: store, Progress: bar, Identities: ids, TrustCA: ca})
	if err != nil {
		return identityHint(err)
	}
	if err := printBackupSummary(cmd, "restored", args[0], m); err != nil {
		return err
	}
	if !backupFlags.json {
		fmt.Fprintf(cmd.ErrOrStderr(), "start it with: docaxis --home %s serve (the first start rebuilds tracking from the record)\n", flagHome)
	}
	return nil
}

func init() {
	restoreCmd.Flags().BoolVar(&backupFlags.json, "json", false, "print the summary as JSON")
	restoreCmd.Flags().StringArrayVar(&backupFlags.identities, "identity", nil, "age identity (key file) that opens an encrypted archive")
	restoreCmd.Flags().StringVar(&backupFlags.ca, "ca", "", "PEM file of the bus's CA (its <home>/ca/ca.crt, kept apart): refuse an archive that bus did not sign")
	rootCmd.AddCommand(restoreCmd)
}
