package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/pdf"
	"github.com/spf13/cobra"
)

var pdfCmd = &cobra.Command{Use: "pdf", Short: "sign PDFs as an agency and verify PDF signatures"}

var pdfSignFlags struct {
	as, reason, location, tsa, contact string
}

var pdfSignCmd = &cobra.Command{
	Use:   "sign --as CODE IN OUT [--reason TEXT] [--location TEXT] [--tsa URL]",
	Short: "add the agency's approval signature to a PDF (existing signatures stay valid)",
	Args:  cobra.ExactArgs(2),
	RunE: func(cmd *cobra.Command, args []string) error {
		ks, err := keystore()
		if err != nil {
			return err
		}
		id, err := ks.Identity(pdfSignFlags.as)
		if err != nil {
			return err
		}
		in, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer in.Close()
		st, err := in.Stat()
		if err != nil {
			return err
		}
		var out bytes.Buffer
		if err := pdf.Sign(cmd.Context(), in, st.Size(), &out, id, pdf.SignOptions{
			Name: id.Certificate().Subject.CommonName, Reason: pdfSignFlags.reason, Location: pdfSignFlags.location,
			ContactInfo: pdfSignFlags.contact, TSA: pdfSignFlags.tsa,
		}); err != nil {
			return err
		}
		tmp := filepath.Join(filepath.Dir(args[1]), "."+filepath.Base(args[1])+".tmp")
		if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, args[1]); err != nil {
			os.Remove(tmp)
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "signed %s as %s -> %s\n", args[0], pdfSignFlags.as, args[1])
		return nil
	},
}

var pdfVerifyJSON bool

var pdfVerifyCmd = &cobra.Command{
	Use:   "verify FILE [--json]",
	Short: "verify every signature of a PDF; exit 0 only when all are intact and trusted and the last covers the whole file",
	Args:  cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		trust, err := pdfTrust(cmd)
		if err != nil {
			return err
		}
		rep, err := pdf.Verify(f, st.Size(), trust)
		if err != nil {
			if pdfVerifyJSON {
				_ = printJSON(cmd, broker.PDFDetails{Error: err.Error()})
			}
			return &exitError{code: 1, err: err}
		}
		if pdfVerifyJSON {
			if err := printJSON(cmd, rep); err != nil {
				return err
			}
		} else {
			w := cmd.OutOrStdout()
			for _, s := range rep.Signatures {
				when := "-"
				if s.SigningTime != nil {
					when = s.SigningTime.Local().Format("2006-01-02 15:04:05")
				}
				fmt.Fprintf(w, "signature %d: %s (agency %s) signed %s\n", s.Number, s.Signer, orDash(s.Agency), when)
				if s.Timestamp != nil {
					fmt.Fprintf(w, "  timestamp %s by %s (verified %v, trusted %v)\n", s.Timestamp.Time.Local().Format("2006-01-02 15:04:05"), s.Timestamp.Authority, s.Timestamp.Verified, s.Timestamp.Trusted)
				}
				fmt.Fprintf(w, "  intact %v, trusted %v, covers whole file %v", s.Intact, s.Trusted, s.CoversWholeFile)
				if s.Failure != "" {
					fmt.Fprintf(w, ": %s", s.Failure)
				}
				fmt.Fprintln(w)
			}
		}
		if err := rep.Err(); err != nil {
			return &exitError{code: 1, err: err}
		}
		if !pdfVerifyJSON {
			fmt.Fprintln(cmd.OutOrStdout(), "OK")
		}
		return nil
	},
}

// pdfTrust trusts the home's CA and, when a bus is reachable, its
// directory (roots, bindings of imported certificates, revocations).
func pdfTrust(cmd *cobra.Command) (*signing.Trust, error) {
	ks, err := keystore()
	if err != nil {
		return nil, err
	}
	if c, err := connect(cmd); err == nil {
		defer c.Close()
		return c.Trust(), nil
	}
	ca, err := ks.CACert()
	if err != nil {
		return nil, errors.New("no CA in --home and no bus to ask: nothing to trust")
	}
	return signing.NewTrust(ca), nil
}

func init() {
	f := pdfSignCmd.Flags()
	f.StringVar(&pdfSignFlags.as, "as", "", "signing agency code")
	f.StringVar(&pdfSignFlags.reason, "reason", "", "reason of the signature")
	f.StringVar(&pdfSignFlags.location, "location", "", "where it was signed")
	f.StringVar(&pdfSignFlags.contact, "contact", "", "contact information")
	f.StringVar(&pdfSignFlags.tsa, "tsa", "", "RFC 3161 timestamp authority URL")
	_ = pdfSignCmd.MarkFlagRequired("as")
	pdfVerifyCmd.Flags().BoolVar(&pdfVerifyJSON, "json", false, "print the report as JSON")
	pdfCmd.AddCommand(pdfSignCmd, pdfVerifyCmd)
	rootCmd.AddCommand(pdfCmd)
}
