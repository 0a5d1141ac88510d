package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/operations"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/spf13/cobra"
)

var systemCmd = &cobra.Command{Use: "system", Short: "document systems that send and receive for many agencies"}

var systemFlags struct {
	name    string
	keyType string
	json    bool
	rotate  bool
}

func systemCredsPath(ks *signing.Keystore, id string) string {
	return operations.SystemCredsPath(ks, id)
}

func systemSecretPath(ks *signing.Keystore, id string) string {
	return operations.SystemSecretPath(ks, id)
}

var systemAddCmd = &cobra.Command{
	Use:   "add ID --name NAME",
	Short: "register a document system: its key and certificate, NATS credentials and shared secret",
	Long: `Registers a document system (one DMS installation) that sends and receives
for every agency registered with --system ID. It gets one key and certificate
(the certificate names the system, not an agency), one NATS credentials file
(printed), and a shared secret for the national axis's compatibility API
('docaxis system secret ID'). Its mailbox holds the mail of all its agencies.`,
	Args: cobra.ExactArgs(1),
	RunE: withClient(func(cmd *cobra.Command, args []string, c *broker.Client) error {
		id := args[0]
		if err := broker.CheckSystemID(id); err != nil {
			return err
		}
		ks, err := keystore()
		if err != nil {
			return err
		}
		op, err := operator(c, ks)
		if err != nil {
			return err
		}
		res, err := op.AddSystem(cmd.Context(), operations.SystemRequest{ID: id, Name: systemFlags.name, KeyType: systemFlags.keyType})
		if err != nil {
			return err
		}
		if systemFlags.json {
			s := res.System
			s.Certificate = ""
			return printJSON(cmd, struct {
				broker.System
				Creds string `json:"creds,omitempty"`
			}{s, res.Creds})
		}
		fmt.Fprintf(cmd.OutOrStdout(), "registered system %s %s (certificate %s)\n", id, systemFlags.name, envelope.Fingerprint(res.Identity.Certificate())[:16])
		if res.Creds != "" {
			fmt.Fprintln(cmd.OutOrStdout(), res.Creds)
		}
		return nil
	}),
}

// systemSecret reads (or makes, or with rotate replaces) the shared secret
// of a system.
func systemSecret(ks *signing.Keystore, id string, rotate bool) (string, error) {
	return operations.SystemSecret(ks, id, rotate)
}

var systemSecretCmd = &cobra.Command{
	Use:   "secret ID [--rotate]",
	Short: "print a system's shared secret (the last line); --rotate replaces it",
	Args:  cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		ks, err := keystore()
		if err != nil {
			return err
		}
		if _, err := ks.SystemIdentity(args[0]); err != nil {
			return err
		}
		secret, err := systemSecret(ks, args[0], systemFlags.rotate)
		if err != nil {
			return err
		}
		if systemFlags.rotate {
			fmt.Fprintln(cmd.OutOrStdout(), "secret of system "+args[0]+" replaced; the old one no longer works")
		}
		fmt.Fprintln(cmd.OutOrStdout(), secret)
		return nil
	},
}

var systemListCmd = &cobra.Command{
	Use:   "list",
	Short: "list the document systems",
	Args:  cobra.NoArgs,
	RunE: withClient(func(cmd *cobra.Command, _ []string, c *broker.Client) error {
		list, err := c.Systems(cmd.Context())
		if err != nil {
			return err
		}
		if systemFlags.json {
			for _, s := range list {
				s.Certificate = ""
				if err := printJSON(cmd, s); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tADDED\tREMOVED")
		for _, s := range list {
			removed := ""
			if !s.Removed.IsZero() {
				removed = s.Removed.Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, s.Name, s.Added.Format("2006-01-02 15:04"), removed)
		}
		return tw.Flush()
	}),
}

var systemRemoveCmd = &cobra.Command{
	Use:   "remove ID",
	Short: "take a system out of service: mailbox closed, credentials and secret revoked",
	Args:  cobra.ExactArgs(1),
	RunE: withClient(func(cmd *cobra.Command, args []string, c *broker.Client) error {
		id := args[0]
		if err := c.RemoveSystem(cmd.Context(), id); err != nil {
			return err
		}
		ks, err := keystore()
		if err != nil {
			return err
		}
		if creds := systemCredsPath(ks, id); fileExists(creds) {
			a, err := openAuthority()
			if err != nil {
				return err
			}
			if err := a.RevokeCreds(creds); err != nil {
				return fmt.Errorf("removed system %s, but revoking its credentials failed: %w", id, err)
			}
		}
		if err := os.Remove(systemSecretPath(ks, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "removed system %s\n", id)
		return nil
	}),
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func init() {
	f := systemAddCmd.Flags()
	f.StringVar(&systemFlags.name, "name", "", "the system's name")
	f.StringVar(&systemFlags.keyType, "key-type", "ecdsa", "key type: ecdsa, ed25519, rsa")
	f.BoolVar(&systemFlags.json, "json", false, "print the entry as JSON")
	_ = systemAddCmd.MarkFlagRequired("name")
	systemListCmd.Flags().BoolVar(&systemFlags.json, "json", false, "one JSON object per system")
	systemSecretCmd.Flags().BoolVar(&systemFlags.rotate, "rotate", false, "replace the secret")
	systemCmd.AddCommand(systemAddCmd, systemListCmd, systemRemoveCmd, systemSecretCmd)
	rootCmd.AddCommand(systemCmd)
}
