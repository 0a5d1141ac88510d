package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
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

var markFlags struct {
	as, note                        string
	department, staff, email, phone string
	wait                            time.Duration
	json                            bool
}

var markCmd = &cobra.Command{
	Use:   "mark --as CODE ID STATE",
	Short: "set a business status (accepted, rejected, assigned, processing, done or an edXML code) as a recipient",
	Args:  cobra.ExactArgs(2),
	RunE: func(cmd *cobra.Command, args []string) error {
		state, err := envelope.ParseState(args[1])
		if err != nil {
			return err
		}
		c, err := connect(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		f := markFlags
		o := broker.MarkOptions{Note: f.note}
		if f.department != "" || f.staff != "" || f.email != "" || f.phone != "" {
			o.Staff = &envelope.Staff{Department: f.department, Name: f.staff, Email: f.email, Phone: f.phone}
		}
		st, err := c.Mark(cmd.Context(), f.as, args[0], state, o)
		if err != nil {
			return err
		}
		// Wait for the tracker so that a status read right after shows it.
		ctx, cancel := context.WithTimeout(cmd.Context(), f.wait)
		defer cancel()
		t, werr := c.WaitState(ctx, args[0], f.as, state)
		if f.json {
			if t == nil {
				return printJSON(cmd, st)
			}
			return printJSON(cmd, t)
		}
		if werr != nil {
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s by %s: sent (status %s), not yet applied\n", args[0], state, f.as, st.ID)
			return nil
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s %s by %s\n", args[0], strings.ToUpper(string(state)), f.as)
		return nil
	},
}

func init() {
	statusCmd.Flags().BoolVar(&statusJSON, "json", false, "print as JSON: id, recipients[{agency, state, history}]")
	watchCmd.Flags().StringVar(&watchFlags.as, "as", "", "agency code")
	watchCmd.Flags().BoolVar(&watchFlags.json, "json", false, "one JSON object per change")
	_ = watchCmd.MarkFlagRequired("as")
	f := markCmd.Flags()
	f.StringVar(&markFlags.as, "as", "", "recipient agency code setting the status")
	f.StringVar(&markFlags.note, "note", "", "note (e.g. the reason of a rejection)")
	f.StringVar(&markFlags.department, "department", "", "staff department")
	f.StringVar(&markFlags.staff, "staff", "", "staff name")
	f.StringVar(&markFlags.email, "email", "", "staff email")
	f.StringVar(&markFlags.phone, "phone", "", "staff phone")
	f.DurationVar(&markFlags.wait, "wait", 5*time.Second, "wait this long for the bus to apply the status")
	f.BoolVar(&markFlags.json, "json", false, "print the resulting tracking as JSON")
	_ = markCmd.MarkFlagRequired("as")
	rootCmd.AddCommand(statusCmd, watchCmd, markCmd)
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
