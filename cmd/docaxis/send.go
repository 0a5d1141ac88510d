package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/spf13/cobra"
)

var sendFlags struct {
	as, to, subject, body string
	files                 []string
	kind, refers, reason  string
	due, codeNumber       string
	codeNotation, docType string
	json                  bool
}

var sendCmd = &cobra.Command{
	Use:   "send --as CODE --to CODE[,CODE...] --subject TEXT [--file PATH]...",
	Short: "sign a document envelope and send it to one or more agencies; prints the envelope id",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		f := sendFlags
		e := envelope.New(f.as, splitList(f.to), f.subject)
		e.Body = f.body
		if f.kind != "" {
			e.Kind = envelope.Kind(f.kind)
		}
		e.Refers, e.Reason = f.refers, f.reason
		if f.due != "" || f.codeNumber != "" || f.codeNotation != "" || f.docType != "" {
			e.Document = &envelope.Document{DueDate: f.due, CodeNumber: f.codeNumber, CodeNotation: f.codeNotation, Type: f.docType}
		}
		c, err := connect(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		var files []broker.File
		for _, path := range f.files {
			fh, err := os.Open(path)
			if err != nil {
				return fmt.Errorf("attach %s: %w", path, err)
			}
			defer fh.Close()
			st, err := fh.Stat()
			if err != nil {
				return err
			}
			if st.IsDir() {
				return fmt.Errorf("attach %s: is a directory", path)
			}
			files = append(files, broker.File{Name: filepath.Base(path), Reader: fh, Size: st.Size(), Progress: progressFor(cmd, filepath.Base(path), st.Size(), f.json)})
		}
		res, err := c.Send(cmd.Context(), e, files...)
		if err != nil && !(errors.Is(err, broker.ErrDuplicate) && res != nil) {
			return err
		}
		if f.json {
			return printJSON(cmd, res)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "sent to %s\n", strings.Join(res.Recipients, ", "))
		fmt.Fprintln(cmd.OutOrStdout(), res.ID)
		return err
	},
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func init() {
	f := sendCmd.Flags()
	f.StringVar(&sendFlags.as, "as", "", "sending agency code")
	f.StringVar(&sendFlags.to, "to", "", "recipient agency codes, comma separated")
	f.StringVar(&sendFlags.subject, "subject", "", "subject (trích yếu)")
	f.StringVar(&sendFlags.body, "body", "", "short text body")
	f.StringArrayVar(&sendFlags.files, "file", nil, "attachment file (repeatable)")
	f.StringVar(&sendFlags.kind, "kind", "", "business kind: document (default), revoke, update, replace")
	f.StringVar(&sendFlags.refers, "refers", "", "id of the envelope a revoke, update or replace acts on")
	f.StringVar(&sendFlags.reason, "reason", "", "reason of a revoke, update or replace")
	f.StringVar(&sendFlags.due, "due", "", "due date YYYY-MM-DD")
	f.StringVar(&sendFlags.codeNumber, "code-number", "", "document number (số)")
	f.StringVar(&sendFlags.codeNotation, "code-notation", "", "document notation (ký hiệu)")
	f.StringVar(&sendFlags.docType, "doc-type", "", "document type")
	f.BoolVar(&sendFlags.json, "json", false, "print the result as JSON")
	_ = sendCmd.MarkFlagRequired("as")
	_ = sendCmd.MarkFlagRequired("to")
	rootCmd.AddCommand(sendCmd)
}
