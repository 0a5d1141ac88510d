package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// `docaxis nats-config`: the nats-server configuration of an external
// cluster (see the README's scale-out section).

var natsConfigOut string

var natsConfigCmd = &cobra.Command{
	Use:   "nats-config [--out FILE]",
	Short: "write the nats-server configuration (operator, accounts) for an external cluster",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		a, err := openAuthority()
		if err != nil {
			return err
		}
		// The configuration carries the revocation of an earlier version's
		// credentials: the cluster refuses them once it is reloaded.
		if err := upgradeCredentials(a, nil); err != nil {
			return err
		}
		conf := a.ServerConfig()
		if natsConfigOut == "" {
			fmt.Fprint(cmd.OutOrStdout(), conf)
			return nil
		}
		if err := os.WriteFile(natsConfigOut, []byte(conf), 0o600); err != nil {
			return err
		}
		creds, err := a.AdminCreds()
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s; include it in each nats-server configuration. The bus's own credentials: %s\n", natsConfigOut, creds)
		return nil
	},
}

func init() {
	natsConfigCmd.Flags().StringVar(&natsConfigOut, "out", "", "write the configuration to FILE instead of stdout")
	rootCmd.AddCommand(natsConfigCmd)
}
