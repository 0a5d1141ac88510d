package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

// Global flags (DESIGN.md's CLI contract).
var (
	flagHome   string
	flagServer string
)

func init() {
	rootCmd.PersistentFlags().StringVar(&flagHome, "home", envOr("DOCAXIS_HOME", ".docaxis"), "home directory: CA, agency keys, credentials, embedded data (env DOCAXIS_HOME)")
	rootCmd.PersistentFlags().StringVar(&flagServer, "server", envOr("DOCAXIS_SERVER", "nats://127.0.0.1:4222"), "NATS URL of the bus (env DOCAXIS_SERVER)")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func keystore() (*signing.Keystore, error) { return signing.OpenKeystore(flagHome) }

func dataDir() string { return filepath.Join(flagHome, "data") }

// homeTrust trusts the home's CA when there is one; otherwise the client
// falls back to the roots the bus publishes.
func homeTrust(ks *signing.Keystore) *signing.Trust {
	if ca, err := ks.CACert(); err == nil {
		return signing.NewTrust(ca)
	}
	return nil
}

// connect opens a client on the bus with the home's keys and trust.
func connect(cmd *cobra.Command) (*broker.Client, error) {
	ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
	defer cancel()
	ks, err := keystore()
	if err != nil {
		return nil, err
	}
	// A command reads the directory entries it needs by key: loading a
	// national directory whole would cost seconds per command.
	opts := []broker.Option{broker.WithKeystore(ks), broker.WithNATSOptions(nats.Timeout(5 * time.Second)), broker.WithDirectoryByKey()}
	if t := homeTrust(ks); t != nil {
		opts = append(opts, broker.WithTrust(t))
	}
	if flagCreds != "" {
		opts = append(opts, broker.WithAgencyCredentials(flagCreds))
	}
	opts = append(opts, broker.WithNATSOptions(homeNATSOptions()...))
	s, err := flagStore(ctx)
	if err != nil {
		return nil, err
	}
	if s != nil {
		opts = append(opts, broker.WithStore(s))
	}
	c, err := broker.Connect(ctx, flagServer, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w (is 'docaxis serve' running? --server %s)", err, flagServer)
	}
	return c, nil
}

// withClient runs a command with a client on the bus, closed afterwards.
func withClient(run func(cmd *cobra.Command, args []string, c *broker.Client) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := connect(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		return run(cmd, args, c)
	}
}

// printJSON writes v as one line of JSON.
func printJSON(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
