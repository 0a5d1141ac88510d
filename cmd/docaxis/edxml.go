package main

import (
	"fmt"
	"github.com/docaxis/docaxis/broker"
	"io"
	"os"
	"path/filepath"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
	"github.com/spf13/cobra"
)

var edxmlCmd = &cobra.Command{Use: "edxml", Short: "read and write edXML (QCVN 102:2016) documents and statuses"}

var edxmlImportJSON bool

// edxmlImport is what `edxml import --json` prints.
type edxmlImport struct {
	Kind        string               `json:"kind"` // document or status
	Envelope    *envelope.Envelope   `json:"envelope"`
	Attachments []edxmlAttachmentOut `json:"attachments"`
	Warnings    []string             `json:"warnings"`
}

type edxmlAttachmentOut struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type"`
	ContentID string `json:"content_id,omitempty"`
}

// parseEdXML parses the file at path; attachments are read from the open
// file later, so the caller closes it when done.
func parseEdXML(path string) (*edxml.Message, io.Closer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	m, err := edxml.ParseReaderAt(f, st.Size())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, f, nil
}

var edxmlImportCmd = &cobra.Command{
	Use:   "import FILE",
	Short: "parse an edXML document or status and print it normalised, without sending",
	Args:  cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		m, file, err := parseEdXML(args[0])
		if err != nil {
			return err
		}
		defer file.Close()
		out := edxmlImport{Kind: "document", Attachments: []edxmlAttachmentOut{}}
		if m.IsStatus() {
			out.Kind = "status"
			if out.Envelope, err = edxml.StatusToEnvelope(m.Status(), edxml.ImportOptions{}); err != nil {
				return err
			}
		} else {
			e, atts, err := m.ToEnvelope(edxml.ImportOptions{})
			if err != nil {
				return err
			}
			out.Envelope = e
			for _, a := range atts {
				out.Attachments = append(out.Attachments, edxmlAttachmentOut{Name: a.Name, MediaType: a.MediaType, ContentID: a.ContentID})
			}
		}
		out.Warnings = append([]string{}, m.Warnings...)
		if edxmlImportJSON {
			return printJSON(cmd, out)
		}
		w := cmd.OutOrStdout()
		e := out.Envelope
		fmt.Fprintf(w, "%s from %s to %v\n", out.Kind, e.From, e.To)
		if e.Status != nil {
			fmt.Fprintf(w, "status %s (%s) for %s: %s\n", e.Status.State, e.Status.State.Code(), orDash(e.Status.Of), e.Status.Note)
		} else {
			fmt.Fprintf(w, "subject: %s\nkind: %s\n", e.Subject, e.Kind)
			if d := e.Document; d != nil {
				fmt.Fprintf(w, "code: %s/%s  promulgated %s at %s  type %s  due %s\n", d.CodeNumber, d.CodeNotation, d.PromulgationDate, d.PromulgationPlace, d.TypeName, orDash(d.DueDate))
			}
			for _, a := range out.Attachments {
				fmt.Fprintf(w, "attachment: %s (%s)\n", a.Name, a.MediaType)
			}
		}
		for _, warn := range out.Warnings {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", warn)
		}
		return nil
	},
}

var edxmlSendAs string

var edxmlSendCmd = &cobra.Command{
	Use:   "send --as CODE FILE",
	Short: "send an edXML document as an envelope, or an edXML status as a status; prints the id",
	Args:  cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		m, file, err := parseEdXML(args[0])
		if err != nil {
			return err
		}
		defer file.Close()
		for _, warn := range m.Warnings {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", warn)
		}
		c, err := connect(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		res, err := c.SendEdXML(cmd.Context(), edxmlSendAs, m)
		if err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		for _, name := range res.Skipped {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: attachment %q could not be decoded: it travels only inside original.edxml\n", name)
		}
		if res.Kind == "status" {
			fmt.Fprintf(cmd.ErrOrStderr(), "status %s (%s) on %s\n", res.State, res.State.Code(), res.Of)
		} else {
			fmt.Fprintf(cmd.ErrOrStderr(), "sent to %v\n", res.Recipients)
		}
		fmt.Fprintln(cmd.OutOrStdout(), res.ID)
		return nil
	},
}

var edxmlExportFlags struct {
	status bool
	out    string
}

var edxmlExportCmd = &cobra.Command{
	Use:   "export ID [--status] [--out DIR]",
	Short: "write an envelope, or its statuses, as edXML",
	Args:  cobra.ExactArgs(1),
	RunE: withClient(func(cmd *cobra.Command, args []string, c *broker.Client) error {
		ctx := cmd.Context()
		ds, err := c.Status(ctx, args[0])
		if err != nil {
			return err
		}
		doc, err := c.ReadEnvelope(ctx, ds.Recipients[0].Seq)
		if err != nil {
			return err
		}
		if doc.Err != nil {
			return doc.Err
		}
		write := func(name string, fn func(w io.Writer) error) error {
			if edxmlExportFlags.out == "" {
				return fn(cmd.OutOrStdout())
			}
			if err := os.MkdirAll(edxmlExportFlags.out, 0o755); err != nil {
				return err
			}
			f, err := os.Create(filepath.Join(edxmlExportFlags.out, name))
			if err != nil {
				return err
			}
			if err := fn(f); err != nil {
				// A file cut short (an attachment that failed its check)
				// must not pass for an export.
				f.Close()
				os.Remove(f.Name())
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "wrote", f.Name())
			return f.Close()
		}
		if !edxmlExportFlags.status {
			return write(args[0]+".edxml", func(w io.Writer) error {
				return edxml.Write(w, doc.Envelope, func(a envelope.Attachment) (io.ReadCloser, error) {
					return c.OpenAttachment(ctx, a)
				})
			})
		}
		statuses, err := c.Statuses(ctx, args[0])
		if err != nil {
			return err
		}
		for i, rs := range statuses {
			e := rs.Signed.Envelope
			if code := e.Status.State.Code(); code == "" {
				continue // sent, invalid: no edXML status code
			}
			edxml.SetResponseFor(e, doc.Envelope)
			name := fmt.Sprintf("%s-%02d-%s-%s.edxml", args[0], i, e.Status.State.Code(), envelope.Token(rs.Recipient))
			if err := write(name, func(w io.Writer) error {
				if err := edxml.Write(w, e, nil); err != nil {
					return err
				}
				if edxmlExportFlags.out == "" {
					_, err := fmt.Fprintln(w)
					return err
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	}),
}

func init() {
	edxmlImportCmd.Flags().BoolVar(&edxmlImportJSON, "json", false, "print the normalised envelope as JSON")
	edxmlSendCmd.Flags().StringVar(&edxmlSendAs, "as", "", "sending agency code (the file's From)")
	_ = edxmlSendCmd.MarkFlagRequired("as")
	edxmlExportCmd.Flags().BoolVar(&edxmlExportFlags.status, "status", false, "export the envelope's statuses instead")
	edxmlExportCmd.Flags().StringVar(&edxmlExportFlags.out, "out", "", "write files into DIR instead of stdout")
	edxmlCmd.AddCommand(edxmlImportCmd, edxmlSendCmd, edxmlExportCmd)
	rootCmd.AddCommand(edxmlCmd)
}
