package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/spf13/cobra"
)

// `docaxis mark`: a recipient's business status on a document.

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
		// Wait for the tracker so that a status read right after shows it.
		o.Wait = f.wait
		st, err := c.Mark(cmd.Context(), f.as, args[0], state, o)
		if err != nil {
			return err
		}
		t, terr := c.Tracking(cmd.Context(), args[0], f.as)
		applied := terr == nil && t.Applied(st.ID)
		if f.json {
			if terr != nil {
				return printJSON(cmd, st)
			}
			return printJSON(cmd, t)
		}
		if !applied {
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s by %s: sent (status %s), not yet applied\n", args[0], state, f.as, st.ID)
			return nil
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s %s by %s\n", args[0], strings.ToUpper(string(state)), f.as)
		return nil
	},
}

func init() {
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
	rootCmd.AddCommand(markCmd)
}
