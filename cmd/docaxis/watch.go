package main

import (
	"fmt"

	"github.com/docaxis/docaxis/broker"
	"github.com/spf13/cobra"
)

// `docaxis watch`: live state changes of an agency's documents.

var watchFlags struct {
	as   string
	json bool
}

var watchCmd = &cobra.Command{
	Use:   "watch --as CODE",
	Short: "stream live state changes of the documents an agency sent or received",
	Args:  cobra.NoArgs,
	RunE: withClient(func(cmd *cobra.Command, _ []string, c *broker.Client) error {
		ch, err := c.Watch(cmd.Context(), watchFlags.as)
		if err != nil {
			return err
		}
		for t := range ch {
			if watchFlags.json {
				if err := printJSON(cmd, t); err != nil {
					return err
				}
				continue
			}
			dir := "to"
			other := t.Recipient
			if t.Recipient == watchFlags.as {
				dir, other = "from", t.Sender
			}
			over := ""
			if t.Overdue {
				over = " OVERDUE"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s  %s  %s %s  %-12s%s  %q\n", t.Updated.Local().Format("15:04:05"), t.Envelope, dir, other, t.State, over, t.Subject)
		}
		return nil
	}),
}

func init() {
	watchCmd.Flags().StringVar(&watchFlags.as, "as", "", "agency code")
	watchCmd.Flags().BoolVar(&watchFlags.json, "json", false, "one JSON object per change")
	_ = watchCmd.MarkFlagRequired("as")
	rootCmd.AddCommand(watchCmd)
}
