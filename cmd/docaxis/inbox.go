package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/spf13/cobra"
)

var inboxFlags struct {
	as               string
	wait             time.Duration
	save             string
	max              int
	json             bool
	requireSignedPDF bool
}

// inboxRecord is what `inbox --json` prints per envelope.
type inboxRecord struct {
	ID          string             `json:"id"`
	Recipient   string             `json:"recipient,omitempty"`
	Kind        envelope.Kind      `json:"kind,omitempty"`
	Refers      string             `json:"refers,omitempty"`
	From        string             `json:"from"`
	To          []string           `json:"to,omitempty"`
	Subject     string             `json:"subject"`
	Created     *time.Time         `json:"created,omitempty"`
	Body        string             `json:"body,omitempty"`
	Document    *envelope.Document `json:"document,omitempty"`
	Verified    bool               `json:"verified"`
	Duplicate   bool               `json:"duplicate,omitempty"`
	Quarantined bool               `json:"quarantined,omitempty"`
	Retry       bool               `json:"retry,omitempty"`
	Error       string             `json:"error,omitempty"`
	Digest      string             `json:"digest,omitempty"`
	Signer      string             `json:"signer,omitempty"`
	Attachments []inboxAttachment  `json:"attachments"`
	Details     map[string]any     `json:"details,omitempty"`
}

type inboxAttachment struct {
	envelope.Attachment
	Path    string `json:"path,omitempty"`
	Details any    `json:"details,omitempty"`
}

var inboxCmd = &cobra.Command{
	Use:   "inbox [--as CODE] [--wait DURATION] [--save DIR]",
	Short: "receive, verify and acknowledge an agency's envelopes; one record per envelope",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		f := inboxFlags
		c, err := connect(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		if f.as == "" && broker.SystemOfActor(c.Agency()) == "" {
			return errors.New(`required flag "as" not set (only a system's credentials read a mailbox without it: the system's)`)
		}
		var records []inboxRecord
		opts := []broker.MailboxOption{broker.OnOutcome(func(o broker.Outcome) {
			if o.Retry && o.ID == "" {
				return
			}
			records = append(records, recordOf(o))
			if !f.json {
				printInboxLine(cmd, records[len(records)-1])
			} else {
				_ = printJSON(cmd, records[len(records)-1])
			}
		})}
		if f.save != "" {
			opts = append(opts, broker.SaveAttachments(f.save), broker.SaveProgress(func(a envelope.Attachment) func(int64) {
				return progressFor(cmd, a.Name, a.Size, f.json)
			}))
		}
		if f.requireSignedPDF {
			opts = append(opts, broker.RequireSignedPDF())
		}
		mb, err := c.Mailbox(cmd.Context(), f.as, opts...)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		_, err = mb.Fetch(ctx, f.max, f.wait, func(context.Context, *broker.Delivery) error { return nil })
		if err != nil && ctx.Err() == nil {
			return err
		}
		if !f.json && len(records) == 0 {
			fmt.Fprintln(cmd.ErrOrStderr(), "no new envelopes")
		}
		return nil
	},
}

func recordOf(o broker.Outcome) inboxRecord {
	r := inboxRecord{ID: o.ID, From: o.From, Subject: o.Subject, Verified: o.Verified, Duplicate: o.Duplicate,
		Quarantined: o.Quarantined, Retry: o.Retry, Error: o.Error, Attachments: []inboxAttachment{}}
	if d := o.Delivery; d != nil {
		e := d.Envelope
		r.Kind, r.Refers, r.To, r.Created, r.Body, r.Document = e.Kind, e.Refers, e.To, &e.Created, e.Body, e.Document
		r.Digest, r.Signer, r.Details, r.Recipient = d.Digest, d.Signed.Chain[0].Subject.CommonName, d.Details, d.Recipient
		saved := map[string]string{}
		for _, s := range d.Saved {
			saved[s.Name] = s.Path
		}
		for _, a := range e.Attachments {
			ia := inboxAttachment{Attachment: a, Path: saved[a.Name]}
			if d.Details != nil {
				ia.Details = d.Details[a.Name]
			}
			r.Attachments = append(r.Attachments, ia)
		}
	}
	return r
}

func printInboxLine(cmd *cobra.Command, r inboxRecord) {
	w := cmd.OutOrStdout()
	switch {
	case r.Verified:
		fmt.Fprintf(w, "%s  from %s  %q  verified", r.ID, r.From, r.Subject)
		if len(r.Attachments) > 0 {
			fmt.Fprintf(w, "  %d attachment(s)", len(r.Attachments))
		}
		fmt.Fprintln(w)
		for _, a := range r.Attachments {
			fmt.Fprintf(w, "    %s  %s  %s", a.Name, human(a.Size), a.SHA256[:16])
			if a.Path != "" {
				fmt.Fprintf(w, "  -> %s", a.Path)
			}
			fmt.Fprintln(w)
		}
	case r.Duplicate:
		fmt.Fprintf(w, "%s  from %s  already handled (redelivery acknowledged)\n", r.ID, r.From)
	case r.Quarantined:
		fmt.Fprintf(w, "%s  from %s  INVALID, quarantined: %s\n", orDash(r.ID), orDash(r.From), r.Error)
	default:
		fmt.Fprintf(w, "%s  from %s  will retry: %s\n", orDash(r.ID), orDash(r.From), r.Error)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func init() {
	f := inboxCmd.Flags()
	f.StringVar(&inboxFlags.as, "as", "", "receiving agency code")
	f.DurationVar(&inboxFlags.wait, "wait", 2*time.Second, "stop after this long without a new envelope")
	f.StringVar(&inboxFlags.save, "save", "", "save attachments under DIR/<envelope id>/<name>, verified")
	f.IntVar(&inboxFlags.max, "max", 0, "stop after this many messages (0: no limit)")
	f.BoolVar(&inboxFlags.json, "json", false, "one JSON object per envelope")
	f.BoolVar(&inboxFlags.requireSignedPDF, "require-signed-pdf", false, "answer invalid for an envelope with an unsigned or broken PDF")
	rootCmd.AddCommand(inboxCmd)
}
