package main

import (
	"strings"

	"github.com/docaxis/docaxis/broker/bench"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

var benchClusterFlags struct {
	nats     string
	replicas int
}

// benchCluster points a benchmark at an external cluster (--nats): the
// bus's streams and the raw stream get the same replicas, and the
// connections the credentials of the home (as serve's).
func benchCluster(cmd *cobra.Command, cfg *bench.Config) error {
	f := benchClusterFlags
	if f.nats == "" {
		return nil
	}
	cfg.URL = strings.TrimSpace(f.nats)
	cfg.Replicas = f.replicas
	if cfg.Replicas == 0 {
		cfg.Replicas = 3
	}
	cfg.NATSOptions = []nats.Option{nats.Name("docaxis bench"), nats.MaxReconnects(-1)}
	cfg.NATSOptions = append(cfg.NATSOptions, homeNATSOptions()...)
	// The agencies connect with their own credentials, issued by the
	// home's authority when this home holds it (the operator's machine).
	if creds, err := adminCreds(); err == nil && creds != "" && flagCreds == "" {
		a, err := openAuthority()
		if err != nil {
			return err
		}
		cfg.Auth = a
		cfg.AgencyNATSOptions = []nats.Option{nats.Name("docaxis bench agency"), nats.MaxReconnects(-1), homeTLSOption()}
	}
	return nil
}

func init() {
	f := benchCmd.Flags()
	f.StringVar(&benchClusterFlags.nats, "nats", "", "measure an external NATS cluster (URLs, comma separated; it must carry no bus)")
	f.IntVar(&benchClusterFlags.replicas, "replicas", 0, "stream replicas with --nats (default 3)")
}
