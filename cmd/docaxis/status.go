package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/docaxis/docaxis/broker"
	"github.com/spf13/cobra"
)

var statusJSON bool

var statusCmd = &cobra.Command{
	Use:   "status ID",
	Short: "show an envelope's state per recipient, with history",
	Args:  cobra.ExactArgs(1),
	RunE: withClient(func(cmd *cobra.Command, args []string, c *broker.Client) error {
		ds, err := c.Status(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if statusJSON {
			return printJSON(cmd, ds)
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "%s  %q\nfrom %s  created %s", ds.ID, ds.Subject, ds.Sender, ds.Created.Local().Format("2006-01-02 15:04:05"))
		if ds.DueDate != "" {
			fmt.Fprintf(w, "  due %s", ds.DueDate)
		}
		fmt.Fprintln(w)
		if ds.Note != "" {
			fmt.Fprintf(w, "note: %s\n", ds.Note)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RECIPIENT\tSTATE\tCODE\tUPDATED\tNOTE")
		for _, r := range ds.Recipients {
			state := string(r.State)
			if r.Overdue {
				state += " (OVERDUE)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Recipient, state, orDash(r.Code), r.Updated.Local().Format("2006-01-02 15:04:05"), r.Reason)
		}
		tw.Flush()
		for _, r := range ds.Recipients {
			fmt.Fprintf(w, "\n%s:\n", r.Recipient)
			for _, h := range r.History {
				fmt.Fprintf(w, "  %s  %-12s %s", h.At.Local().Format("2006-01-02 15:04:05"), h.State, h.By)
				if h.Note != "" {
					fmt.Fprintf(w, "  %q", h.Note)
				}
				if h.Reason != "" {
					fmt.Fprintf(w, "  reason: %s", h.Reason)
				}
				fmt.Fprintln(w)
			}
			for _, line := range detailLines(r.Details) {
				fmt.Fprintf(w, "  %s\n", line)
			}
			for _, h := range r.Refused {
				fmt.Fprintf(w, "  %s  refused %s from %s: %s\n", h.At.Local().Format("2006-01-02 15:04:05"), h.State, h.By, h.Reason)
			}
		}
		return nil
	}),
}

func init() {
	statusCmd.Flags().BoolVar(&statusJSON, "json", false, "print as JSON: id, recipients[{agency, state, history}]")
	rootCmd.AddCommand(statusCmd)
}

// detailLines summarises receipt details (PDF signature checks) per
// attachment for people; --json has them whole.
func detailLines(details map[string]any) []string {
	var out []string
	for name, v := range details {
		d, _ := v.(map[string]any)
		if d == nil {
			continue
		}
		ok, _ := d["ok"].(bool)
		var signers []string
		if rep, _ := d["report"].(map[string]any); rep != nil {
			sigs, _ := rep["signatures"].([]any)
			for _, sv := range sigs {
				if sig, _ := sv.(map[string]any); sig != nil {
					signers = append(signers, fmt.Sprintf("%v (%v)", sig["signer"], sig["agency"]))
				}
			}
		}
		line := fmt.Sprintf("%s: PDF signed by %s", name, strings.Join(signers, ", "))
		if len(signers) == 0 {
			line = name + ": PDF not signed"
		}
		if ok {
			line += ", verified"
		} else if e, _ := d["error"].(string); e != "" {
			line += ": " + e
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}
