package main

import (
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/spf13/cobra"
)

var agencyCmd = &cobra.Command{Use: "agency", Short: "register and list agencies"}

var agencyAddFlags struct {
	name        string
	nonstandard bool
	keyType     string
	importKey   string
	importCert  string
	json        bool
	system      string
	parent      string
	email       string
	oldCode     string
}

var agencyAddCmd = &cobra.Command{
	Use:   "add CODE --name NAME",
	Short: "register an agency: issue (or import) its key and certificate, publish it in the directory",
	Long: `Register an agency on the bus. Without --import-key, a key (ECDSA P-256 by
default) and a certificate from the development CA under --home are issued;
the certificate binds the agency code. With --import-key and --import-cert, an
existing key and certificate chain (RSA, ECDSA or Ed25519) are used instead.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		code := args[0]
		f := agencyAddFlags
		if f.nonstandard {
			if err := envelope.CheckNonStandardCode(code); err != nil {
				return err
			}
		} else if err := envelope.CheckCode(code); err != nil {
			return fmt.Errorf("%w (use --nonstandard to register a code outside the standard format)", err)
		}
		ks, err := keystore()
		if err != nil {
			return err
		}
		c, err := connect(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		// In a federation, the codes bound to this bus (as far as it knows),
		// before a key is issued for a code it may not serve.
		if err := federation.CheckClaim(cmd.Context(), c, code); err != nil {
			return err
		}
		if f.system != "" {
			return addServedAgency(cmd, c, ks, code)
		}
		id, err := agencyIdentity(ks, code, f.name, f.keyType, f.importKey, f.importCert)
		if err != nil {
			return err
		}
		if signing.AgencyOf(id.Certificate()) == "" {
			c.Trust().Bind(code, id.Certificate())
		}
		a := broker.Agency{Code: code, Name: f.name, NonStandard: f.nonstandard, Certificate: string(signing.EncodeCerts(id.Chain...)),
			Parent: f.parent, Email: f.email, OldCode: f.oldCode}
		if prev, err := c.LookupAgency(cmd.Context(), code); err == nil && prev.System != "" {
			// Leaving its system for a mailbox of its own: the end of the
			// binding is signed too.
			raw, err := signBinding(ks, signing.Binding{Agency: code})
			if err != nil {
				return err
			}
			a.Bindings = append(prev.Bindings, raw)
		}
		if err := c.RegisterAgency(cmd.Context(), a); err != nil {
			return err
		}
		creds, err := issueAgencyCreds(code)
		if err != nil {
			return fmt.Errorf("registered %s, but issuing its NATS credentials failed: %w", code, err)
		}
		if f.json {
			a.Certificate = ""
			return printJSON(cmd, struct {
				broker.Agency
				Creds string `json:"creds,omitempty"`
			}{a, creds})
		}
		fmt.Fprintf(cmd.OutOrStdout(), "registered %s %s (certificate %s)\n", code, f.name, envelope.Fingerprint(id.Certificate())[:16])
		return nil
	},
}

// agencyIdentity loads the stored identity of code, or imports or issues one.
func agencyIdentity(ks *signing.Keystore, code, name, keyType, keyFile, certFile string) (*signing.Identity, error) {
	if keyFile != "" || certFile != "" {
		if keyFile == "" || certFile == "" {
			return nil, errors.New("--import-key and --import-cert go together")
		}
		kb, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, err
		}
		cb, err := os.ReadFile(certFile)
		if err != nil {
			return nil, err
		}
		key, err := signing.ParseKey(kb)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", keyFile, err)
		}
		chain, err := signing.ParseCerts(cb)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", certFile, err)
		}
		id, err := signing.NewIdentity(code, key, chain)
		if err != nil {
			return nil, err
		}
		return id, ks.Save(id)
	}
	if id, err := ks.Identity(code); err == nil {
		return id, nil
	} else if !errors.Is(err, signing.ErrNoIdentity) {
		return nil, err
	}
	ca, err := ks.CA()
	if err != nil {
		return nil, err
	}
	id, err := ca.Issue(code, name, signing.IssueOptions{KeyType: signing.KeyType(keyType)})
	if err != nil {
		return nil, err
	}
	return id, ks.Save(id)
}

var agencyListJSON bool

var agencyListCmd = &cobra.Command{
	Use:   "list",
	Short: "list the agencies in the bus directory",
	Args:  cobra.NoArgs,
	RunE: withClient(func(cmd *cobra.Command, _ []string, c *broker.Client) error {
		if agencyListFlags.since > 0 || agencyListFlags.parent != "" || cmd.Flags().Changed("since") {
			ch, err := c.DirectoryChanges(cmd.Context(), agencyListFlags.since)
			if err != nil {
				return err
			}
			list := ch.Agencies
			if p := agencyListFlags.parent; p != "" {
				list = list[:0]
				for _, a := range ch.Agencies {
					if a.Parent == p {
						list = append(list, a)
					}
				}
			}
			if agencyListJSON && cmd.Flags().Changed("since") {
				// One object: the changes and the version to ask from next.
				for i := range list {
					list[i].Certificate, list[i].Bindings = "", nil
				}
				ch.Agencies = list
				for i := range ch.Systems {
					ch.Systems[i].Certificate = ""
				}
				return printJSON(cmd, ch)
			}
			return printAgencies(cmd, list, ch.Version, agencyListJSON)
		}
		list, err := c.Agencies(cmd.Context())
		if err != nil {
			return err
		}
		if agencyListJSON {
			for _, a := range list {
				a.Certificate = ""
				if err := printJSON(cmd, a); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CODE\tNAME\tADDED")
		for _, a := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Code, a.Name, a.Added.Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	}),
}

func init() {
	f := agencyAddCmd.Flags()
	f.StringVar(&agencyAddFlags.name, "name", "", "the agency's name")
	f.BoolVar(&agencyAddFlags.nonstandard, "nonstandard", false, "accept a code outside the standard V1V2V3.Z1Z2.Y1Y2.MX1X2 format")
	f.StringVar(&agencyAddFlags.keyType, "key-type", "ecdsa", "key type of an issued key: ecdsa, ed25519, rsa")
	f.StringVar(&agencyAddFlags.importKey, "import-key", "", "PEM private key to import instead of issuing one")
	f.StringVar(&agencyAddFlags.importCert, "import-cert", "", "PEM certificate chain (leaf first) to import")
	f.BoolVar(&agencyAddFlags.json, "json", false, "print the directory entry as JSON")
	f.StringVar(&agencyAddFlags.system, "system", "", "the document system that sends and receives for it (no key of its own is issued)")
	f.StringVar(&agencyAddFlags.parent, "parent", "", "code of the unit above it in the hierarchy")
	f.StringVar(&agencyAddFlags.email, "email", "", "its e-mail address")
	f.StringVar(&agencyAddFlags.oldCode, "old-code", "", "its previous code")
	_ = agencyAddCmd.MarkFlagRequired("name")
	agencyListCmd.Flags().BoolVar(&agencyListJSON, "json", false, "one JSON object per agency")
	agencyCmd.AddCommand(agencyAddCmd, agencyListCmd)
	rootCmd.AddCommand(agencyCmd)
}
