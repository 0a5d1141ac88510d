package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/operations"
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
existing key and certificate chain (RSA, ECDSA or Ed25519) are used instead;
a certificate of one of the bus's own services (CA, audit, time-stamping, TLS
server, document system, bus) is refused.`,
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
		if f.system != "" {
			return addServedAgency(cmd, c, ks, code)
		}
		var imported *signing.Identity
		if f.importKey != "" || f.importCert != "" {
			if imported, err = importIdentity(code, f.importKey, f.importCert); err != nil {
				return err
			}
		}
		op, err := operator(c, ks)
		if err != nil {
			return err
		}
		// The directory write checks the code (in a federation, against
		// the codes bound to this bus) before the key is kept.
		res, err := op.AddAgency(cmd.Context(), operations.AgencyRequest{
			Agency:  broker.Agency{Code: code, Name: f.name, NonStandard: f.nonstandard, Parent: f.parent, Email: f.email, OldCode: f.oldCode},
			KeyType: f.keyType, Import: imported})
		if err != nil {
			return err
		}
		if f.json {
			a := res.Agency
			a.Certificate = ""
			return printJSON(cmd, struct {
				broker.Agency
				Creds string `json:"creds,omitempty"`
			}{a, res.Creds})
		}
		fmt.Fprintf(cmd.OutOrStdout(), "registered %s %s (certificate %s)\n", code, f.name, envelope.Fingerprint(res.Identity.Certificate())[:16])
		return nil
	},
}

// importIdentity reads the key and certificate chain of --import-key and
// --import-cert.
func importIdentity(code, keyFile, certFile string) (*signing.Identity, error) {
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
	return signing.NewIdentity(code, key, chain)
}

// operator returns the operator's actions on the bus c is connected to,
// from the home: with its NATS authority when the bus has one.
func operator(c *broker.Client, ks *signing.Keystore) (*operations.Operator, error) {
	if _, err := os.Stat(filepath.Join(authorityDir(), "account.nk")); errors.Is(err, fs.ErrNotExist) {
		return operations.New(c, ks), nil
	}
	a, err := openAuthority()
	if err != nil {
		return nil, err
	}
	return operations.New(c, ks, operations.WithAuthority(a)), nil
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
