package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/spf13/cobra"
)

var quarantineCmd = &cobra.Command{Use: "quarantine", Short: "list and re-drive messages that could not be processed"}

var quarantineListFlags struct {
	agency string
	json   bool
}

var quarantineListCmd = &cobra.Command{
	Use:   "list [--agency CODE]",
	Short: "list quarantined messages with their reason and delivery count",
	Args:  cobra.NoArgs,
	RunE: withClient(func(cmd *cobra.Command, _ []string, c *broker.Client) error {
		list, err := c.QuarantineList(cmd.Context(), quarantineListFlags.agency)
		if err != nil {
			return err
		}
		if quarantineListFlags.json {
			for _, q := range list {
				if err := printJSON(cmd, q); err != nil {
					return err
				}
			}
			return nil
		}
		if len(list) == 0 {
			fmt.Fprintln(cmd.ErrOrStderr(), "quarantine is empty")
			return nil
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tAGENCY\tENVELOPE\tDELIVERIES\tTIME\tREASON")
		for _, q := range list {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", q.Seq, q.Agency, orDash(q.Envelope), q.Deliveries, q.Time.Local().Format("2006-01-02 15:04:05"), q.Reason)
		}
		return tw.Flush()
	}),
}

var quarantineRetryJSON bool

var quarantineRetryCmd = &cobra.Command{
	Use:   "retry ID",
	Short: "re-drive a quarantined message (by quarantine SEQ, or envelope id when only one entry holds it) as the record holds it",
	Long: `Re-drive a quarantined message: the record message the entry points to is
stored again, with the same bytes on the same subject, in the mailbox it came
from; then the entry is removed. An entry that does not point to a copy of its
agency's mailbox holding the same bytes is refused (inspect it, have the
sender send again, then 'quarantine drop' it). Entries of the federation are
re-driven by the bus's federation service.`,
	Args: cobra.ExactArgs(1),
	RunE: withClient(func(cmd *cobra.Command, args []string, c *broker.Client) error {
		q, err := c.QuarantineRetry(cmd.Context(), args[0])
		if errors.Is(err, broker.ErrFederationEntry) {
			err = federation.Retry(cmd.Context(), c, q.Seq)
		}
		if err != nil {
			return err
		}
		if quarantineRetryJSON {
			return printJSON(cmd, q)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "re-driven %s (quarantine seq %d, record #%d) to %s\n", orDash(q.Envelope), q.Seq, q.OriginSeq, orDash(q.Subject))
		return nil
	}),
}

var quarantineDropJSON bool

var quarantineDropCmd = &cobra.Command{
	Use:   "drop ID",
	Short: "remove a quarantined message for good (by quarantine SEQ, or envelope id when only one entry holds it)",
	Args:  cobra.ExactArgs(1),
	RunE: withClient(func(cmd *cobra.Command, args []string, c *broker.Client) error {
		q, err := c.QuarantineDrop(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if quarantineDropJSON {
			return printJSON(cmd, q)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "dropped quarantine seq %d (%s, %s)\n", q.Seq, orDash(q.Envelope), q.Agency)
		return nil
	}),
}

func init() {
	quarantineListCmd.Flags().StringVar(&quarantineListFlags.agency, "agency", "", "only this agency's quarantine")
	quarantineListCmd.Flags().BoolVar(&quarantineListFlags.json, "json", false, "one JSON object per message")
	quarantineRetryCmd.Flags().BoolVar(&quarantineRetryJSON, "json", false, "print the re-driven message as JSON")
	quarantineDropCmd.Flags().BoolVar(&quarantineDropJSON, "json", false, "print the dropped message as JSON")
	quarantineCmd.AddCommand(quarantineListCmd, quarantineRetryCmd, quarantineDropCmd)
	rootCmd.AddCommand(quarantineCmd)
}
