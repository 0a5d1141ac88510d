package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/alerts"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/broker/lease"
	"github.com/spf13/cobra"
)

// Alerts: `docaxis alerts list`, and the rules serve checks (on unless
// --alerts=false), with their thresholds as flags.

var alertFlags struct {
	on                bool
	cfg               alerts.Config
	notAnswered       longDuration
	certExpiry        longDuration
	webhookSecretFile string
	list              struct {
		json bool
		all  bool
	}
}

var alertsCmd = &cobra.Command{
	Use:   "alerts",
	Short: "alerts the bus raised: late documents, certificates, quarantine, links, disk",
}

var alertsListCmd = &cobra.Command{
	Use:   "list [--all] [--json]",
	Short: "list the alerts that hold (with --all, those resolved lately too)",
	Args:  cobra.NoArgs,
	RunE: withClient(func(cmd *cobra.Command, _ []string, c *broker.Client) error {
		list, err := alerts.List(cmd.Context(), c.JetStream())
		if err != nil {
			return err
		}
		var shown []alerts.Alert
		for _, a := range list {
			if alertFlags.list.all || a.State == alerts.Firing {
				shown = append(shown, a)
			}
		}
		if alertFlags.list.json {
			for _, a := range shown {
				if err := printJSON(cmd, a); err != nil {
					return err
				}
			}
			return nil
		}
		if len(shown) == 0 {
			fmt.Fprintln(cmd.ErrOrStderr(), "no alert holds")
			return nil
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "STATE\tSEVERITY\tRULE\tSUBJECT\tRAISED\tSUMMARY")
		for _, a := range shown {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.State, a.Severity, a.Rule, a.Subject, a.Raised.Local().Format(time.DateTime), a.Summary)
		}
		return tw.Flush()
	}),
}

func init() {
	l := alertsListCmd.Flags()
	l.BoolVar(&alertFlags.list.json, "json", false, "one JSON object per alert")
	l.BoolVar(&alertFlags.list.all, "all", false, "also the alerts resolved lately")
	alertsCmd.AddCommand(alertsListCmd)
	rootCmd.AddCommand(alertsCmd)

	d := alerts.DefaultConfig
	f := serveCmd.Flags()
	c := &alertFlags.cfg
	alertFlags.notAnswered, alertFlags.certExpiry = longDuration(d.NotAnswered), longDuration(d.CertExpiry)
	f.BoolVar(&alertFlags.on, "alerts", true, "check the alert rules (see docaxis alerts list)")
	f.DurationVar(&c.NotDelivered, "alert-not-delivered", d.NotDelivered, "alert when a document is not delivered after this long (negative: off)")
	f.Var(&alertFlags.notAnswered, "alert-not-answered", "alert when a delivered document is neither accepted nor rejected after this long, e.g. 7d (negative: off)")
	f.Var(&alertFlags.certExpiry, "alert-cert-expiry", "alert when an agency or system certificate expires within this long, e.g. 60d (negative: off)")
	f.IntVar(&c.QuarantineGrowth, "alert-quarantine-growth", d.QuarantineGrowth, "alert when this many messages are quarantined within --alert-quarantine-window (negative: off)")
	f.DurationVar(&c.QuarantineWindow, "alert-quarantine-window", d.QuarantineWindow, "window of --alert-quarantine-growth")
	f.DurationVar(&c.LinkDown, "alert-link-down", d.LinkDown, "alert when a federation link is down this long (negative: off)")
	f.Float64Var(&c.DiskFull, "alert-disk-full", d.DiskFull, "alert when the store's disk is this fraction full (negative: off)")
	f.DurationVar(&c.Interval, "alert-interval", 5*time.Minute, "how often the rules are checked")
	f.DurationVar(&c.Repeat, "alert-repeat", d.Repeat, "how often an alert that holds is sent again")
	f.StringVar(&c.Webhook.URL, "alert-webhook", envOr("DOCAXIS_ALERT_WEBHOOK", ""), "URL that receives every alert raised, repeated and resolved as a JSON POST (env DOCAXIS_ALERT_WEBHOOK)")
	f.StringVar(&alertFlags.webhookSecretFile, "alert-webhook-secret-file", "", "file holding a secret: each webhook body is then signed (header X-Docaxis-Signature: sha256=HMAC)")
}

// startAlerts checks the rules in the background and exposes the alerts
// to /metrics and the operator's page.
func startAlerts(ctx context.Context, env *serveEnv) (func(), error) {
	if !alertFlags.on {
		return nil, nil
	}
	cfg := alertFlags.cfg
	cfg.NotAnswered, cfg.CertExpiry = time.Duration(alertFlags.notAnswered), time.Duration(alertFlags.certExpiry)
	if alertFlags.webhookSecretFile != "" {
		b, err := os.ReadFile(alertFlags.webhookSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--alert-webhook-secret-file: %w", err)
		}
		cfg.Webhook.Secret = strings.TrimSpace(string(b))
	}
	js := env.Service.Client.JetStream()
	src := alerts.Sources{
		Tracking:   env.Service.Client,
		Systems:    alertSystems{env.Service.Client},
		Quarantine: alerts.StreamQuarantine{JS: js},
		// The federation starts after this hook: its links are read when
		// the rules are checked.
		Links: alerts.LinksFunc(func(ctx context.Context) ([]alerts.Link, error) {
			fed := env.Federation
			if fed == nil {
				return nil, nil
			}
			st, err := fed.Status(ctx)
			if err != nil {
				return nil, err
			}
			var out []alerts.Link
			for _, l := range st.Links {
				if l.State != federation.LinkUnknown {
					out = append(out, alerts.Link{Peer: l.Peer, Up: l.State == federation.LinkUp})
				}
			}
			return out, nil
		}),
	}
	if env.Server != nil {
		src.Disk = alerts.DirDisk{Dir: dataDir()}
	}
	// One process of the bus checks and notifies (several serve on one
	// cluster would send every event twice).
	el, err := lease.New(ctx, js, alerts.LeaseDuty, lease.Config{Replicas: serveReplicas(), Logger: env.Log})
	if err != nil {
		return nil, err
	}
	m, err := alerts.New(ctx, js, cfg, src, alerts.WithLogger(env.Log), alerts.WithBus(env.Service.Client.Bus()), alerts.WithReplicas(serveReplicas()), alerts.WithElection(el))
	if err != nil {
		return nil, err
	}
	env.Alerts = m
	if env.Metrics != nil {
		env.Metrics.Registry().MustRegister(m.Collector())
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(rctx)
	}()
	return func() {
		cancel()
		<-done
		m.Close()
	}, nil
}
