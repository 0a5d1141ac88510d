package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/httpapi"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/signing"
	"github.com/spf13/cobra"
)

var evidenceFlags struct {
	out         string
	attachments bool
	tsaRoot     string
	as          string
}

var auditEvidenceCmd = &cobra.Command{
	Use:   "evidence ID --out FILE.zip [--attachments]",
	Short: "write the evidence package of one document, time-stamped, that verifies offline",
	Long: `Write one document's evidence package: the envelope as it travelled, every
receipt and status about it, the certificates and revocation lists, the chain
links from each record to a checkpoint time-stamped by a TSA (RFC 3161), the
tokens (.tsr, as 'openssl ts -reply -in FILE -text' reads them), attachments
with --attachments, a manifest and a README with the openssl steps. Check it
with 'docaxis audit verify FILE.zip' or the README alone. --as limits it to
what that agency may see (it must be the sender or a recipient).`,
	Args: cobra.ExactArgs(1),
	RunE: runAuditEvidence,
}

func init() {
	f := auditEvidenceCmd.Flags()
	f.StringVar(&evidenceFlags.out, "out", "", "package file to write (.zip; default evidence-ID.zip)")
	f.BoolVar(&evidenceFlags.attachments, "attachments", false, "include the attachments")
	f.StringVar(&evidenceFlags.tsaRoot, "tsa-root", "", "PEM file of the TSA root(s) to put in the package (default: the bus CA, which issues the local TSA)")
	f.StringVar(&evidenceFlags.as, "as", "", "only what this agency (sender or recipient) may see")
	f.BoolVar(&auditFlags.json, "json", false, "print JSON")
	auditVerifyCmd.Flags().StringVar(&auditTSARoot, "tsa-root", "", "PEM file of the TSA root(s) to trust instead of the package's certs/tsa-ca.pem")
	auditCmd.AddCommand(auditEvidenceCmd)
}

// auditTSARoot pins the TSA roots for `audit verify`.
var auditTSARoot string

func runAuditEvidence(cmd *cobra.Command, args []string) error {
	r, closeFn, err := auditReader(cmd)
	if err != nil {
		return err
	}
	defer closeFn()
	c, err := connect(cmd)
	if err != nil {
		return err
	}
	roots := c.Verifier().Trust.Roots()
	c.Close()
	if evidenceFlags.tsaRoot != "" {
		b, err := os.ReadFile(evidenceFlags.tsaRoot)
		if err != nil {
			return fmt.Errorf("--tsa-root: %w", err)
		}
		if roots, err = signing.ParseCerts(b); err != nil {
			return fmt.Errorf("--tsa-root %s: %w", evidenceFlags.tsaRoot, err)
		}
	}
	out := evidenceFlags.out
	if out == "" {
		out = audit.EvidenceFile(args[0])
	}
	tmp := out + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	m, err := r.Evidence(cmd.Context(), audit.EvidenceOptions{ID: args[0], Agency: evidenceFlags.as, Attachments: evidenceFlags.attachments, TSARoots: roots}, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, out)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	for _, w := range m.Warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
	}
	if auditFlags.json {
		return printJSON(cmd, map[string]any{"file": out, "document": m.Document, "records": len(m.Records), "timestamps": m.Timestamps, "covered": m.Covered, "warnings": m.Warnings})
	}
	cov := "every record time-stamped"
	if !m.Covered {
		cov = "NOT every record time-stamped yet"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: document %s, %d records, %d time-stamp tokens, %d attachments; %s\n",
		out, m.Document, len(m.Records), len(m.Timestamps), len(m.Attachments), cov)
	return nil
}

// serveEvidence serves evidence packages on the HTTP API with the TSA
// roots serve's time-stamper trusts.
type serveEvidence struct {
	r *audit.Reader
	c *broker.Client
}

func newServeEvidence(c *broker.Client) httpapi.EvidenceSource {
	r, err := audit.NewReader(c.JetStream(), audit.ReaderConfig{Verifier: c.Verifier(), Store: c.Store()})
	if err != nil {
		return nil
	}
	return &serveEvidence{r: r, c: c}
}

func (e *serveEvidence) Evidence(ctx context.Context, o audit.EvidenceOptions, w io.Writer) (*audit.Manifest, error) {
	activeTimestamper.Lock()
	o.TSARoots = activeTimestamper.roots
	activeTimestamper.Unlock()
	if len(o.TSARoots) == 0 {
		o.TSARoots = e.c.Verifier().Trust.Roots()
	}
	return e.r.Evidence(ctx, o, w)
}
