package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/broker/metrics"
	"github.com/docaxis/docaxis/broker/operations"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
)

// Federation: provincial and ministerial buses linked through the national
// bus (see broker/federation).

var fedFlags struct {
	busID       string
	leafListen  string
	uplink      string
	uplinkCreds string
	uplinkCA    string
	retention   time.Duration
	metrics     string
}

func federationDir() string { return filepath.Join(flagHome, "federation") }

func init() {
	f := serveCmd.Flags()
	f.StringVar(&fedFlags.busID, "bus-id", "", "this bus's id in a federation (letters, digits, '-', '_'); also its JetStream domain")
	f.StringVar(&fedFlags.leafListen, "leaf-listen", "", "national bus: HOST:PORT where member buses link (NATS leaf node connections)")
	f.StringVar(&fedFlags.uplink, "uplink", "", "member bus: the national bus's leaf address, nats-leaf://HOST:PORT")
	f.StringVar(&fedFlags.uplinkCA, "uplink-ca", "", "member bus: PEM CA that signed the national bus's TLS certificate (the link then uses TLS)")
	f.StringVar(&fedFlags.uplinkCreds, "uplink-creds", "", "member bus: the credentials file 'docaxis federation member add' issued on the national bus")
	f.DurationVar(&fedFlags.retention, "federation-retention", 90*24*time.Hour, "how long messages wait in the federation streams for a link")
	f.StringVar(&fedFlags.metrics, "federation-metrics", "", "HOST:PORT serving /metrics with the bus's and the federation's figures (empty: off)")

	fedCmd.AddCommand(fedStatusCmd, fedMemberCmd, fedTraceCmd, fedCACmd)
	fedMemberCmd.AddCommand(fedMemberAddCmd, fedMemberListCmd, fedMemberBindCmd, fedMemberRemoveCmd, fedMemberRekeyCmd)
	fedMemberAddCmd.Flags().StringVar(&fedMemberCodes, "codes", "", "agency codes the member serves: comma-separated patterns, e.g. '*.*.*.H14' or '000.05.*.*,000.00.00.H14' (required)")
	_ = fedMemberAddCmd.MarkFlagRequired("codes")
	fedMemberBindCmd.Flags().StringVar(&fedMemberCodes, "codes", "", "the bus's new binding: comma-separated code patterns")
	_ = fedMemberBindCmd.MarkFlagRequired("codes")
	fedMemberRekeyCmd.Flags().StringVar(&fedMemberCA, "ca", "", "PEM file of the member bus's new CA certificate, checked out of band")
	_ = fedMemberRekeyCmd.MarkFlagRequired("ca")
	fedMemberRekeyCmd.Flags().StringVar(&fedMemberOut, "out", "", "where to write the member's new leaf credentials (default <home>/federation/members/ID/uplink.creds)")
	fedMemberRekeyCmd.Flags().StringVar(&fedRekeyAt, "withdraw-at", "", "when the old CA stops counting (RFC 3339; default now)")
	fedMemberRemoveCmd.Flags().BoolVar(&fedMemberJSON, "json", false, "print what was done as JSON")
	fedCACmd.Flags().StringVar(&fedCABus, "bus-id", "", "this bus's id: named in the CA when it is created here")
	// A CA created by serve --bus-id carries the bus's id in its name.
	serveCmd.PreRunE = func(*cobra.Command, []string) error {
		if fedFlags.busID == "" {
			return nil
		}
		ks, err := keystore()
		if err != nil {
			return err
		}
		_, err = ks.CAFor(fedFlags.busID)
		return err
	}
	fedStatusCmd.Flags().BoolVar(&fedStatusJSON, "json", false, "print the status as JSON")
	fedMemberAddCmd.Flags().StringVar(&fedMemberCA, "ca", "", "PEM file of the member bus's CA certificate (its <home>/ca/ca.crt), checked out of band")
	_ = fedMemberAddCmd.MarkFlagRequired("ca")
	fedMemberAddCmd.Flags().StringVar(&fedMemberOut, "out", "", "where to write the member's leaf credentials (default <home>/federation/members/ID/uplink.creds)")
	fedMemberListCmd.Flags().BoolVar(&fedMemberJSON, "json", false, "one JSON object per bus")
	fedTraceCmd.Flags().BoolVar(&fedTraceJSON, "json", false, "one JSON object per copy")
	rootCmd.AddCommand(fedCmd)
}

func checkFederationFlags() error {
	f := fedFlags
	switch {
	case f.busID == "" && (f.leafListen != "" || f.uplink != "" || f.uplinkCreds != ""):
		return errors.New("--leaf-listen, --uplink and --uplink-creds need --bus-id")
	case f.busID == "":
		return nil
	case f.leafListen != "" && f.uplink != "":
		return errors.New("a bus is either the national bus (--leaf-listen) or a member (--uplink), not both")
	case (f.uplink == "") != (f.uplinkCreds == ""):
		return errors.New("--uplink and --uplink-creds go together")
	}
	return federation.CheckBusID(f.busID)
}

// nationalOf returns the national bus's id: this bus's without an uplink,
// else the one the uplink credentials were issued by.
func nationalOf() (string, error) {
	if fedFlags.uplinkCreds == "" {
		return fedFlags.busID, nil
	}
	member, national, err := auth.LinkOfCreds(fedFlags.uplinkCreds)
	if err != nil {
		return "", err
	}
	if member != fedFlags.busID {
		return "", fmt.Errorf("--uplink-creds were issued to bus %s, this is bus %s", member, fedFlags.busID)
	}
	return national, nil
}

// startFederation runs the federation service when serve has --bus-id.
func startFederation(ctx context.Context, env *serveEnv) (func(), error) {
	if err := checkFederationFlags(); err != nil || fedFlags.busID == "" {
		return nil, err
	}
	national, err := nationalOf()
	if err != nil {
		return nil, err
	}
	ca, err := env.Keystore.CA()
	if err != nil {
		return nil, err
	}
	cfg := federation.Config{
		BusID:     fedFlags.busID,
		National:  national,
		Client:    env.Service.Client,
		CA:        ca,
		Dir:       federationDir(),
		Tracker:   env.Service.Tracker,
		Retention: fedFlags.retention,
		Logger:    env.Log,
	}
	if env.Server != nil {
		cfg.Server = env.Server.NATS()
	}
	if serveFlags.nats != "" {
		cfg.Replicas = max(serveFlags.replicas, 3)
		env.Log.Warn("federation with an external NATS cluster: its servers must run JetStream domain " + fedFlags.busID + " and the leaf node links themselves (see README)")
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	svc, err := federation.Start(sctx, cfg)
	if err != nil {
		return nil, err
	}
	env.Federation = svc
	role := "member of " + national
	if national == fedFlags.busID {
		role = "national bus"
	}
	fmt.Fprintf(env.Cmd.ErrOrStderr(), "federation: bus %s, %s\n", fedFlags.busID, role)
	stopMetrics, err := serveFederationMetrics(env, svc)
	if err != nil {
		svc.Stop()
		return nil, err
	}
	return func() {
		stopMetrics()
		svc.Stop()
	}, nil
}

// serveFederationMetrics serves /metrics with the bus's figures
// (broker/metrics) and the federation's, when --federation-metrics is set.
func serveFederationMetrics(env *serveEnv, svc *federation.Service) (func(), error) {
	// The federation's figures join the bus's on the HTTP API's /metrics.
	if env.Metrics != nil {
		if err := env.Metrics.Registry().Register(svc.Collector()); err != nil {
			return nil, err
		}
	}
	if fedFlags.metrics == "" {
		return func() {}, nil
	}
	m := env.Metrics
	if m == nil {
		m = metrics.New(env.Service, env.Log)
	}
	ln, err := net.Listen("tcp", fedFlags.metrics)
	if err != nil {
		return nil, fmt.Errorf("--federation-metrics %s: %w", fedFlags.metrics, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	env.Log.Info("federation metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

var fedCmd = &cobra.Command{Use: "federation", Short: "links between this bus and the others: status, members, traces"}

var fedStatusJSON bool

var fedStatusCmd = &cobra.Command{
	Use:   "status [--json]",
	Short: "show each link (state, backlog, last delivery) and the figures per bus and per agency",
	Args:  cobra.NoArgs,
	RunE: withClient(func(cmd *cobra.Command, _ []string, c *broker.Client) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
		defer cancel()
		st, err := federation.QueryStatus(ctx, c.Conn())
		if err != nil {
			return err
		}
		if fedStatusJSON {
			return printJSON(cmd, st)
		}
		printFederationStatus(cmd, st)
		return nil
	}),
}

func whenOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func printFederationStatus(cmd *cobra.Command, st *federation.Status) {
	w := cmd.OutOrStdout()
	if st.Role == "national" {
		fmt.Fprintf(w, "bus %s (national bus)\n\n", st.Bus)
	} else {
		fmt.Fprintf(w, "bus %s (member of %s)\n\n", st.Bus, st.National)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LINK\tSTATE\tRTT\tBACKLOG\tLAST DELIVERY\tINCOMING\tLAST RECEIVED\tERROR")
	for _, l := range st.Links {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", l.Peer, l.State, orDash(l.RTT), l.Backlog, whenOrDash(l.LastDelivery), l.Incoming, whenOrDash(l.LastReceived), l.Error)
	}
	tw.Flush()
	if len(st.Queues) > 0 {
		fmt.Fprintln(w, "\nqueues on this bus:")
		names := make([]string, 0, len(st.Queues))
		for n := range st.Queues {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(w, "  %-32s %d\n", n, st.Queues[n])
		}
	}
	note := ""
	if !st.Seeded {
		note = " (still counting the record before the start)"
	}
	fmt.Fprintf(w, "\nper bus%s:\n", note)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM\tTO\tSENT\tDELIVERED\tFAILED\tLATENCY MEAN\tLATENCY MAX")
	for _, f := range st.Buses {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", f.FromBus, f.ToBus, f.Sent, f.Delivered, f.Failed, seconds(f.LatencyMean), seconds(f.LatencyMax))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nper sending agency:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AGENCY\tBUS\tSENT\tDELIVERED\tFAILED\tLATENCY MEAN\tLATENCY MAX")
	for _, f := range st.Agencies {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", f.Agency, f.FromBus, f.Sent, f.Delivered, f.Failed, seconds(f.LatencyMean), seconds(f.LatencyMax))
	}
	tw.Flush()
}

func seconds(s float64) string {
	if s == 0 {
		return "-"
	}
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

var fedCACmd = &cobra.Command{
	Use:   "ca",
	Short: "print this bus's CA certificate file and fingerprint, to hand to the national operator",
	Long: `Prints the path and SHA-256 fingerprint of this bus's CA certificate (created
on first use). A member bus's operator hands the file to the national bus's
operator, who admits the bus with 'docaxis federation member add ID --ca FILE'
after both read the fingerprint to each other.`,
	Args: cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		ks, err := keystore()
		if err != nil {
			return err
		}
		ca, err := ks.CAFor(fedCABus)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s\nSHA-256 %s\nCA %q (key %s)\n", filepath.Join(ks.Dir, "ca", "ca.crt"), envelope.Fingerprint(ca.Cert), ca.Cert.Subject.CommonName, signing.KeyID(ca.Cert))
		return nil
	},
}

var fedMemberCmd = &cobra.Command{Use: "member", Short: "member buses of the federation (on the national bus)"}

var (
	fedMemberCA    string
	fedMemberOut   string
	fedMemberJSON  bool
	fedMemberCodes string
	fedRekeyAt     string
	fedCABus       string
)

var fedMemberAddCmd = &cobra.Command{
	Use:   "add BUSID --ca FILE --codes PATTERNS",
	Short: "admit a member bus: list it with its CA and code binding, issue its leaf credentials",
	Long: `Run on the national bus. Lists the member bus in the federation directory
with the CA certificate its operator handed over (compare the fingerprint
printed here with the one the member's operator reads to you) and the agency
codes it serves, and issues the credentials of its leaf connection.

--codes binds code patterns to the member: comma-separated, each with the
four dot-separated fields of a code, a field being a literal, '*' (any), or a
prefix ending in '*': '*.*.*.H14' (every code of province H14),
'000.05.*.*', '000.00.00.H14'. Bindings of two buses may not overlap; a bus
may register only codes its binding covers. Bind the national bus's own codes
with 'docaxis federation member bind NATIONAL --codes ...'.

Give the member's operator the credentials file; the member then runs

  docaxis serve --bus-id BUSID --uplink nats-leaf://NATIONAL:PORT --uplink-creds FILE`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		member := args[0]
		if err := federation.CheckBusID(member); err != nil {
			return err
		}
		data, err := os.ReadFile(fedMemberCA)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		certs, err := signing.ParseCerts(data)
		if err != nil {
			return fmt.Errorf("--ca %s: %w", fedMemberCA, err)
		}
		ca := certs[0]
		c, err := connect(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		ks, err := keystore()
		if err != nil {
			return err
		}
		a, err := openAuthority()
		if err != nil {
			return err
		}
		out := fedMemberOut
		if out == "" {
			out = filepath.Join(federationDir(), "members", member, "uplink.creds")
		}
		patterns, err := federation.ParseCodePatterns(fedMemberCodes)
		if err != nil {
			return fmt.Errorf("--codes: %w", err)
		}
		if len(patterns) == 0 {
			return errors.New("--codes: give the agency codes the member serves")
		}
		ad, err := operations.New(c, ks, operations.WithAuthority(a)).AdmitMember(cmd.Context(),
			operations.MemberRequest{ID: member, CA: ca, Codes: patterns, Creds: out})
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "member bus %s admitted to the federation of %s\n", member, ad.National)
		fmt.Fprintf(w, "  member CA   %q  SHA-256 %s\n", ca.Subject.CommonName, envelope.Fingerprint(ca))
		if own := ad.NationalCA; own != nil {
			fmt.Fprintf(w, "  national CA %q  SHA-256 %s\n", own.Subject.CommonName, envelope.Fingerprint(own))
		}
		fmt.Fprintf(w, "  codes       %s\n", strings.Join(ad.Codes, ","))
		fmt.Fprintf(w, "  credentials %s\n", out)
		fmt.Fprintf(w, "on the member: docaxis serve --bus-id %s --uplink nats-leaf://<this host>:<leaf port> --uplink-creds %s\n", member, filepath.Base(out))
		return nil
	},
}

func keystoreCACert() (*x509.Certificate, error) {
	ks, err := keystore()
	if err != nil {
		return nil, err
	}
	return ks.CACert()
}

var fedMemberListCmd = &cobra.Command{
	Use:   "list",
	Short: "list the buses of the federation with their CA fingerprints",
	Args:  cobra.NoArgs,
	RunE: withClient(func(cmd *cobra.Command, _ []string, c *broker.Client) error {
		list, err := federation.Buses(cmd.Context(), c)
		if err != nil {
			return err
		}
		sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
		if fedMemberJSON {
			for _, b := range list {
				if err := printJSON(cmd, b); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "BUS\tROLE\tCA\tCA SHA-256\tCODES\tADDED")
		for _, b := range list {
			role, cn, fp, codes := "member", "-", "-", "(none: only codes no bus is bound to)"
			if b.National {
				role = "national"
			}
			if !b.Removed.IsZero() {
				role = "removed " + b.Removed.Local().Format("2006-01-02 15:04")
				codes = "-"
			}
			if len(b.Codes) > 0 {
				codes = strings.Join(b.Codes, ",")
			}
			if certs, err := signing.ParseCerts([]byte(b.CA)); err == nil {
				cn, fp = certs[0].Subject.CommonName, envelope.Fingerprint(certs[0])
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, role, cn, fp, codes, b.Added.Local().Format("2006-01-02 15:04"))
		}
		return tw.Flush()
	}),
}

var fedTraceJSON bool

var fedTraceCmd = &cobra.Command{
	Use:   "trace ID",
	Short: "show the buses each copy of an envelope on this bus's record crossed, verified",
	Args:  cobra.ExactArgs(1),
	RunE: withClient(func(cmd *cobra.Command, args []string, c *broker.Client) error {
		ctx := cmd.Context()
		ds, err := c.Status(ctx, args[0])
		if err != nil {
			return err
		}
		s, err := c.JetStream().Stream(ctx, record.Stream)
		if err != nil {
			return err
		}
		w := cmd.OutOrStdout()
		for _, r := range ds.Recipients {
			if r.Seq == 0 {
				continue
			}
			m, err := s.GetMsg(ctx, r.Seq)
			if err != nil {
				return fmt.Errorf("copy for %s: %w", r.Recipient, err)
			}
			hops, verr := federation.VerifyTrace(m.Header, m.Data, m.Header.Get(jetstream.MsgIDHeader), func(string) *signing.Trust { return c.Trust() })
			if fedTraceJSON {
				out := struct {
					Recipient string           `json:"recipient"`
					Seq       uint64           `json:"seq"`
					Hops      []federation.Hop `json:"hops"`
					Error     string           `json:"error,omitempty"`
				}{r.Recipient, r.Seq, hops, ""}
				if verr != nil {
					out.Error = verr.Error()
				}
				if err := printJSON(cmd, out); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(w, "%s (record seq %d):", r.Recipient, r.Seq)
			if len(hops) == 0 && verr == nil {
				fmt.Fprintln(w, " sent on this bus, no hops")
				continue
			}
			fmt.Fprintln(w)
			for _, h := range hops {
				mark := "verified"
				if !h.Verified {
					mark = "NOT VERIFIED"
				}
				fmt.Fprintf(w, "  %-8s %s  %s  %s\n", h.Bus, h.At.Local().Format("2006-01-02 15:04:05.000"), h.Signer, mark)
			}
			if verr != nil {
				fmt.Fprintf(w, "  trace error: %v\n", verr)
			}
		}
		return nil
	}),
}

// issueLeafCreds issues member's leaf credentials into out: a new user of
// its link account, which an earlier revocation does not name.
func issueLeafCreds(a *auth.Authority, national, member, out string) error {
	return a.LeafCreds(national, member, out)
}

// nationalClient connects to the national bus and checks that it is one.
func nationalClient(cmd *cobra.Command) (*broker.Client, string, error) {
	c, err := connect(cmd)
	if err != nil {
		return nil, "", err
	}
	national := c.Bus()
	if national == "" {
		c.Close()
		return nil, "", errors.New("this bus has no bus id: run it with docaxis serve --bus-id ID --leaf-listen HOST:PORT")
	}
	qctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
	st, err := federation.QueryStatus(qctx, c.Conn())
	cancel()
	if err == nil && st.Role != "national" {
		c.Close()
		return nil, "", fmt.Errorf("bus %s is a member of %s: manage members on the national bus", national, st.National)
	}
	return c, national, nil
}

// revokeLink revokes every leaf credential issued to member and closes its
// link account to leaf connections. The running national bus applies it
// at its next sync of the links, which the federation directory change of
// the removal triggers; it then closes the link.
func revokeLink(a *auth.Authority, member string) error {
	return a.RevokeLeaf(member)
}

var fedMemberBindCmd = &cobra.Command{
	Use:   "bind BUSID --codes PATTERNS",
	Short: "replace the agency codes bound to a bus (a member or the national itself)",
	Long: `Run on the national bus. Replaces the code patterns bound to the bus (see
'member add' for the syntax). Agencies a member registered outside its new
binding are withdrawn from the federation directory; the bus the codes are
bound to announces its own and takes them.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		patterns, err := federation.ParseCodePatterns(fedMemberCodes)
		if err != nil {
			return fmt.Errorf("--codes: %w", err)
		}
		c, _, err := nationalClient(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		e, err := federation.BindCodes(cmd.Context(), c, args[0], patterns.Strings())
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "bus %s serves %s\n", e.ID, strings.Join(e.Codes, ","))
		return nil
	},
}

var fedMemberRemoveCmd = &cobra.Command{
	Use:   "remove BUSID",
	Short: "remove a member bus: revoke its link, withdraw its CA and codes, stop routing to it",
	Long: `Run on the national bus. Revokes the member's leaf credentials (its link
is closed and refused), withdraws its CA from now on every bus (what it
signed before still verifies; nothing it signs from now on does), drops its
code binding, marks its agencies withdrawn (senders get a clear error) and
stops its link. Its directory entries and everything it exchanged stay on
record. To admit it again, 'member add' it with a new CA.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		member := args[0]
		c, _, err := nationalClient(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		a, err := openAuthority()
		if err != nil {
			return err
		}
		// The link first: a member being removed must not keep talking.
		lerr := revokeLink(a, member)
		r, err := federation.RemoveBus(cmd.Context(), c, member)
		if err != nil {
			return errors.Join(err, lerr)
		}
		if fedMemberJSON {
			out := struct {
				*federation.Removal
				LinkRevoked bool `json:"link_revoked"`
			}{r, lerr == nil}
			if err := printJSON(cmd, out); err != nil {
				return err
			}
			return lerr
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "bus %s removed from the federation at %s\n", member, r.At.Local().Format(time.RFC3339))
		fmt.Fprintf(w, "  link credentials revoked: %v\n", lerr == nil)
		fmt.Fprintf(w, "  CA withdrawn (key %s)\n", strings.Join(r.Withdrawn, ", "))
		fmt.Fprintf(w, "  agencies withdrawn: %d %s\n", len(r.Agencies), strings.Join(r.Agencies, " "))
		return lerr
	},
}

var fedMemberRekeyCmd = &cobra.Command{
	Use:   "rekey BUSID --ca FILE [--withdraw-at TIME]",
	Short: "give a member bus a new CA and new link credentials, withdrawing the old ones",
	Long: `Run on the national bus. Replaces the member's CA with the one its operator
handed over (compare fingerprints out of band): the old CA is withdrawn from
--withdraw-at (default now) on every bus, so what it signed before still
verifies. Its leaf credentials are revoked and new ones issued. The member
then re-issues its agencies' certificates under the new CA and registers them
again, and restarts with the new credentials.`,
	Args: cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		member := args[0]
		at := time.Now().UTC()
		if fedRekeyAt != "" {
			t, err := time.Parse(time.RFC3339, fedRekeyAt)
			if err != nil {
				return fmt.Errorf("--withdraw-at: %w", err)
			}
			at = t.UTC()
		}
		data, err := os.ReadFile(fedMemberCA)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		certs, err := signing.ParseCerts(data)
		if err != nil {
			return fmt.Errorf("--ca %s: %w", fedMemberCA, err)
		}
		c, national, err := nationalClient(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		if own, err := keystoreCACert(); err == nil && own.Equal(certs[0]) {
			return errors.New("--ca is this bus's own CA: give the member bus's CA")
		}
		e, err := federation.RekeyBus(cmd.Context(), c, member, certs[0], at)
		if err != nil {
			return err
		}
		a, err := openAuthority()
		if err != nil {
			return err
		}
		lerr := revokeLink(a, member)
		out := fedMemberOut
		if out == "" {
			out = filepath.Join(federationDir(), "members", member, "uplink.creds")
		}
		// New credentials are a new user, which the revocation does not name.
		if err := issueLeafCreds(a, national, member, out); err != nil {
			return errors.Join(err, lerr)
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "bus %s has a new CA %q SHA-256 %s\n", e.ID, certs[0].Subject.CommonName, envelope.Fingerprint(certs[0]))
		fmt.Fprintf(w, "  old CA withdrawn from %s; earlier link credentials revoked\n", at.Local().Format(time.RFC3339))
		fmt.Fprintf(w, "  new credentials %s\n", out)
		return lerr
	},
}

// configureFederation sets the embedded server's leaf nodes and JetStream
// domain for --bus-id (a listener on the national, the uplink on a member).
func configureFederation(env *serveEnv, o *server.Options) error {
	if err := checkFederationFlags(); err != nil || fedFlags.busID == "" {
		return err
	}
	so := federation.ServerOptions{BusID: fedFlags.busID, LeafListen: fedFlags.leafListen, Uplink: fedFlags.uplink, UplinkCreds: fedFlags.uplinkCreds}
	if fedFlags.leafListen != "" {
		// With --tls the leaf listener takes the same certificate.
		tc, err := serverTLS(env.Keystore)
		if err != nil {
			return err
		}
		so.LeafTLS = tc
	}
	if fedFlags.uplinkCA != "" {
		pem, err := os.ReadFile(fedFlags.uplinkCA)
		if err != nil {
			return fmt.Errorf("--uplink-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--uplink-ca %s: no PEM certificate", fedFlags.uplinkCA)
		}
		so.UplinkTLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if fedFlags.uplink != "" && !secFlags.noAuth {
		a, err := openAuthority()
		if err != nil {
			return err
		}
		so.LocalAccount = a.AccountPublicKey()
	}
	return so.Configure(o)
}
