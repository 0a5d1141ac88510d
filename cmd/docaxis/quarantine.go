package main

import (
	"fmt"
	"github.com/docaxis/docaxis/broker"
	"text/tabwriter"

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
	Short: "re-drive a quarantined message (by quarantine SEQ or envelope id) into the mailbox it came from",
	Args:  cobra.ExactArgs(1),
	RunE: withClient(func(cmd *cobra.Command, args []string, c *broker.Client) error {
		q, err := c.QuarantineRetry(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if quarantineRetryJSON {
			return printJSON(cmd, q)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "re-driven %s (quarantine seq %d) to the mailbox of %s\n", orDash(q.Envelope), q.Seq, q.Agency)
		return nil
	}),
}

func init() {
	quarantineListCmd.Flags().StringVar(&quarantineListFlags.agency, "agency", "", "only this agency's quarantine")
	quarantineListCmd.Flags().BoolVar(&quarantineListFlags.json, "json", false, "one JSON object per message")
	quarantineRetryCmd.Flags().BoolVar(&quarantineRetryJSON, "json", false, "print the re-driven message as JSON")
	quarantineCmd.AddCommand(quarantineListCmd, quarantineRetryCmd)
	rootCmd.AddCommand(quarantineCmd)
}
