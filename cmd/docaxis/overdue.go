package main

import (
	"fmt"
	"sort"
	"text/tabwriter"

	"github.com/docaxis/docaxis/broker"
	"github.com/spf13/cobra"
)

var overdueFlags struct {
	as   string
	json bool
}

var overdueCmd = &cobra.Command{
	Use:   "overdue --as CODE",
	Short: "list documents an agency sent or received that are past their due date and not done",
	Args:  cobra.NoArgs,
	RunE: withClient(func(cmd *cobra.Command, _ []string, c *broker.Client) error {
		ctx := cmd.Context()
		sent, err := c.Sent(ctx, overdueFlags.as)
		if err != nil {
			return err
		}
		received, err := c.Received(ctx, overdueFlags.as)
		if err != nil {
			return err
		}
		var late []*broker.Tracking
		for _, t := range append(sent, received...) {
			if t.Overdue {
				late = append(late, t)
			}
		}
		sort.Slice(late, func(i, j int) bool {
			if late[i].DueDate != late[j].DueDate {
				return late[i].DueDate < late[j].DueDate
			}
			return late[i].Envelope < late[j].Envelope
		})
		if overdueFlags.json {
			for _, t := range late {
				if err := printJSON(cmd, t); err != nil {
					return err
				}
			}
			return nil
		}
		if len(late) == 0 {
			fmt.Fprintln(cmd.ErrOrStderr(), "nothing overdue")
			return nil
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DUE\tENVELOPE\tFROM\tTO\tSTATE\tSUBJECT")
		for _, t := range late {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.DueDate, t.Envelope, t.Sender, t.Recipient, t.State, t.Subject)
		}
		return tw.Flush()
	}),
}

func init() {
	overdueCmd.Flags().StringVar(&overdueFlags.as, "as", "", "agency code")
	overdueCmd.Flags().BoolVar(&overdueFlags.json, "json", false, "one JSON object per (document, recipient)")
	_ = overdueCmd.MarkFlagRequired("as")
	rootCmd.AddCommand(overdueCmd)
}
