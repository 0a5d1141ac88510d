package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/operations"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

// Security: per-agency NATS credentials, TLS, revocation.
var (
	flagCreds string
	secFlags  struct {
		noAuth           bool
		tls              bool
		tlsCert, tlsKey  string
		tlsHosts         []string
		serverTLSConfig  *tls.Config // set when serve runs with TLS
		serverTLSCertPEM string
	}
)

func authorityDir() string { return filepath.Join(flagHome, "nats") }

func openAuthority() (*auth.Authority, error) { return auth.Open(authorityDir()) }

func agencyCredsPath(code string) string { return operations.AgencyCredsPath(flagHome, code) }

func init() {
	rootCmd.PersistentFlags().StringVar(&flagCreds, "creds", os.Getenv("DOCAXIS_CREDS"), "connect with an agency's NATS credentials file (env DOCAXIS_CREDS)")
	f := serveCmd.Flags()
	f.BoolVar(&secFlags.noAuth, "no-auth", false, "embedded server without authentication (development only)")
	f.BoolVar(&secFlags.tls, "tls", false, "TLS on the NATS listener and the HTTP server (a certificate from the development CA unless --tls-cert)")
	f.StringVar(&secFlags.tlsCert, "tls-cert", "", "PEM server certificate (implies TLS)")
	f.StringVar(&secFlags.tlsKey, "tls-key", "", "PEM server key")
	f.StringSliceVar(&secFlags.tlsHosts, "tls-host", []string{"127.0.0.1", "localhost"}, "host names and IPs of the development server certificate")

	agencyCmd.AddCommand(agencyCredsCmd, agencyRevokeCmd)
	agencyRevokeCmd.Flags().StringVar(&revokeAt, "at", "", "revocation time (RFC 3339; default now)")
	agencyCredsCmd.Flags().BoolVar(&agencyCredsRevoke, "revoke", false, "revoke the agency's NATS credentials (every copy issued into this home's file) and close its connections")
}

// homeNATSOptions are the NATS options every command connects with: the
// bus's own credentials when this home holds them and no --creds is given,
// and TLS verified against the home's CA.
func homeNATSOptions() []nats.Option {
	var opts []nats.Option
	if flagCreds == "" {
		if creds, err := adminCreds(); err == nil && creds != "" {
			opts = append(opts, nats.UserCredentials(creds))
		}
	}
	return append(opts, homeTLSOption())
}

// homeTLSOption verifies the server against the home's CA.
func homeTLSOption() nats.Option {
	if strings.HasPrefix(flagServer, "tls://") {
		return nats.Secure(clientTLS())
	}
	// A server that requires TLS upgrades a nats:// connection; verify it
	// against the home's CA then too.
	return func(o *nats.Options) error {
		if o.TLSConfig == nil {
			o.TLSConfig = clientTLS()
		}
		return nil
	}
}

// adminCreds returns the bus's own credentials when this home holds them
// (the operator's machine); agencies' machines hold only their own.
func adminCreds() (string, error) {
	if _, err := os.Stat(filepath.Join(authorityDir(), "account.nk")); err != nil {
		return "", nil
	}
	a, err := openAuthority()
	if err != nil {
		return "", err
	}
	return a.AdminCreds()
}

// serverTLS returns the TLS configuration of serve, or nil without TLS.
func serverTLS(ks *signing.Keystore) (*tls.Config, error) {
	if secFlags.serverTLSConfig != nil {
		return secFlags.serverTLSConfig, nil
	}
	if !secFlags.tls && secFlags.tlsCert == "" {
		return nil, nil
	}
	var cert tls.Certificate
	var err error
	if secFlags.tlsCert != "" {
		if cert, err = tls.LoadX509KeyPair(secFlags.tlsCert, secFlags.tlsKey); err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
	} else {
		ca, err := ks.CA()
		if err != nil {
			return nil, err
		}
		c, key, err := ca.IssueServer(secFlags.tlsHosts, 365*24*time.Hour)
		if err != nil {
			return nil, err
		}
		kp, err := signing.EncodeKey(key)
		if err != nil {
			return nil, err
		}
		if cert, err = tls.X509KeyPair(signing.EncodeCerts(c, ca.Cert), kp); err != nil {
			return nil, err
		}
	}
	secFlags.serverTLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return secFlags.serverTLSConfig, nil
}

// clientTLS trusts the home's CA (the development CA) for the server.
func clientTLS() *tls.Config {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if ks, err := keystore(); err == nil {
		if ca, err := ks.CACert(); err == nil {
			pool := signing.NewTrust(ca).Pool()
			tc.RootCAs = pool
		}
	}
	return tc
}

// issueAgencyCreds writes the agency's NATS credentials when this home has
// the bus's authority.
func issueAgencyCreds(code string) (string, error) {
	if _, err := os.Stat(filepath.Join(authorityDir(), "account.nk")); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	a, err := openAuthority()
	if err != nil {
		return "", err
	}
	path := agencyCredsPath(code)
	if err := a.AgencyCreds(code, path); err != nil {
		return "", err
	}
	return path, nil
}

var agencyCredsRevoke bool

var agencyCredsCmd = &cobra.Command{
	Use:   "creds CODE [--revoke]",
	Short: "print the path of an agency's NATS credentials file (issued when missing), or revoke them",
	Long: `Prints the path of the credentials file of an agency, usable by any NATS
client (nats.UserCredentials). Its permissions allow exactly the agency's own
traffic; see README.md.

With --revoke, cuts the agency off the bus: its credentials, and every copy
issued into this home's file before it was replaced, are refused from now
on, and a running bus closes their connections within seconds. Revoking its
certificate (agency revoke) makes what it signs invalid; this stops it
publishing at all, for a compromised key or an agency flooding the bus.
Run 'docaxis agency creds CODE' again to issue new credentials.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		code := args[0]
		path := agencyCredsPath(code)
		if agencyCredsRevoke {
			a, err := openAuthority()
			if err != nil {
				return err
			}
			n, err := a.RevokeAgencyCreds(path)
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s has no NATS credentials in this home (%s): nothing to revoke", code, path)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked the NATS credentials of %s (%d issued): a running bus refuses them and closes their connections within seconds; new ones: docaxis agency creds %s\n", code, n, code)
			return nil
		}
		if _, err := os.Stat(path); err == nil {
			fmt.Fprintln(cmd.OutOrStdout(), path)
			return nil
		}
		a, err := openAuthority()
		if err != nil {
			return err
		}
		if err := a.AgencyCreds(code, path); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), path)
		return nil
	},
}

var revokeAt string

var agencyRevokeCmd = &cobra.Command{
	Use:   "revoke CODE [--at TIME]",
	Short: "revoke an agency's certificate: a signed CRL published in the directory",
	Long: `Revokes the agency's current certificate from --at (default now): envelopes
and statuses signed by it after that time are invalid, earlier ones still
verify. The CRL is signed by the development CA and published in the bus
directory under the CA's key, where every client picks it up; it applies to
that CA's certificates only. In a federation a bus revokes only the agencies
it serves: an agency of another bus is revoked by that bus.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		code := args[0]
		at := time.Now().UTC()
		if revokeAt != "" {
			t, err := time.Parse(time.RFC3339, revokeAt)
			if err != nil {
				return fmt.Errorf("--at: %w", err)
			}
			at = t.UTC()
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
		leaf, err := operations.New(c, ks).RevokeAgency(cmd.Context(), code, at)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "revoked the certificate of %s (serial %s) from %s\n", code, leaf.SerialNumber.Text(16), at.Format(time.RFC3339))
		return nil
	},
}

// migrateCRLs moves, when serve starts, CRLs kept under the key layout of
// older versions (the hash of the CA's name) to the key of the CA that
// signed them.
func migrateCRLs(ctx context.Context, env *serveEnv) (func(), error) {
	n, err := env.Service.Client.MigrateCRLs(ctx)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		env.Log.Info("moved CRLs to the key of their CA", "count", n)
	}
	return nil, nil
}

// upgradeCredentials revokes, on the first start of this version, every
// credential an earlier version issued (a user JWT carries its
// permissions, and earlier ones were wider), then issues the bus's own and
// every agency's credentials kept in this home again. Copies handed to
// document systems must be replaced with the new files.
func upgradeCredentials(a *auth.Authority, env *serveEnv) error {
	outdated, err := a.Outdated()
	if err != nil || !outdated {
		return err
	}
	if err := a.RevokeOutdated(); err != nil {
		return fmt.Errorf("revoke credentials of an earlier version: %w", err)
	}
	paths, _ := filepath.Glob(filepath.Join(flagHome, "agencies", "*", "nats.creds"))
	for _, p := range paths {
		code := filepath.Base(filepath.Dir(p))
		if err := a.AgencyCreds(code, p); err != nil {
			return fmt.Errorf("re-issue credentials of %s: %w", code, err)
		}
	}
	if _, err := a.AdminCreds(); err != nil {
		return err
	}
	if env != nil && env.Log != nil {
		env.Log.Warn("credentials issued by an earlier version revoked: their permissions were wider; "+
			"the bus's and the agencies' credentials in this home were issued again (give document systems the new files: docaxis agency creds CODE)",
			"agencies", len(paths))
	}
	return nil
}

// followRevocations applies, every few seconds, credentials revoked by
// another process (docaxis system remove) to the embedded server.
func followRevocations(ctx context.Context, env *serveEnv) (func(), error) {
	if env.Server == nil {
		return func() {}, nil // an external cluster: nats-config and a reload
	}
	links, err := auth.LinksOf(env.Server.NATS())
	if err != nil {
		return func() {}, nil // no authentication
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := links.SyncRevocations(); err != nil {
					env.Log.Warn("revoked credentials not applied", "err", err)
				}
			}
		}
	}()
	return cancel, nil
}

// configureSecurity sets the embedded server's authentication (the home's
// operator and accounts, credentials of earlier versions upgraded) and TLS.
func configureSecurity(env *serveEnv, o *server.Options) error {
	if !secFlags.noAuth {
		a, err := openAuthority()
		if err != nil {
			return err
		}
		if err := upgradeCredentials(a, env); err != nil {
			return err
		}
		if err := a.Configure(o); err != nil {
			return err
		}
	}
	tc, err := serverTLS(env.Keystore)
	if err != nil || tc == nil {
		return err
	}
	o.TLSConfig = tc
	o.TLS = true
	o.TLSVerify = false
	o.TLSTimeout = 5
	return nil
}
