package main

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/lease"
	"github.com/docaxis/docaxis/broker/retention"
	"github.com/spf13/cobra"
)

// Retention: the policy and legal holds live on the bus (AXIS_RETENTION,
// AXIS_HOLDS), so `retention plan` shows what serve's periodic run would
// remove.

var retentionFlags struct {
	json        bool
	record      longDuration
	statuses    longDuration
	attachments longDuration
	agency      string
	document    string
	reason      string
	every       time.Duration
}

var retentionCmd = &cobra.Command{
	Use:   "retention",
	Short: "what the bus keeps and for how long: policy, legal holds, plan, apply",
	Long: `Retention removes, by a policy set on the bus, the record of documents
(copies, statuses, tracking), status messages, and attachment bytes after
delivery (their digests stay in the envelopes). A legal hold on an agency or
a document keeps everything of it. 'retention plan' shows what would be
removed, and what holds keep, before anything is; 'retention apply' removes
it; 'docaxis serve --retention-every 24h' applies it on a schedule.

The record stream's own limit (serve --retention, default 10 years) still
applies: set it longer than any hold must last.`,
}

var retentionSetCmd = &cobra.Command{
	Use:   "set [--record 10y] [--statuses 5y] [--attachments 5y]",
	Short: "set the retention policy (0: keep for ever)",
	Args:  cobra.NoArgs,
	RunE: withRetention(func(cmd *cobra.Command, _ []string, r *retention.Retention) error {
		p := retention.Policy{Record: time.Duration(retentionFlags.record), Statuses: time.Duration(retentionFlags.statuses),
			Attachments: time.Duration(retentionFlags.attachments)}
		if err := r.SetPolicy(cmd.Context(), p, operatorName()); err != nil {
			return err
		}
		return printPolicy(cmd, p)
	}),
}

var retentionPolicyCmd = &cobra.Command{
	Use:   "policy [--json]",
	Short: "show the retention policy in force",
	Args:  cobra.NoArgs,
	RunE: withRetention(func(cmd *cobra.Command, _ []string, r *retention.Retention) error {
		p, err := r.Policy(cmd.Context())
		if err != nil {
			return err
		}
		if retentionFlags.json {
			return printJSON(cmd, p)
		}
		return printPolicy(cmd, p)
	}),
}

func printPolicy(cmd *cobra.Command, p retention.Policy) error {
	keep := func(d time.Duration) string {
		if d <= 0 {
			return "for ever"
		}
		v := longDuration(d)
		return v.String()
	}
	fmt.Fprintf(cmd.OutOrStdout(), "record %s, statuses %s, attachment bytes %s after delivery\n", keep(p.Record), keep(p.Statuses), keep(p.Attachments))
	return nil
}

var retentionPlanCmd = &cobra.Command{
	Use:   "plan [--json]",
	Short: "show what retention would remove now, and what legal holds keep",
	Args:  cobra.NoArgs,
	RunE: withRetention(func(cmd *cobra.Command, _ []string, r *retention.Retention) error {
		p, err := r.Plan(cmd.Context())
		if err != nil {
			return err
		}
		if retentionFlags.json {
			return printJSON(cmd, p)
		}
		return printPlan(cmd, p)
	}),
}

func printPlan(cmd *cobra.Command, p *retention.Plan) error {
	if p.Policy.Empty() {
		fmt.Fprintln(cmd.ErrOrStderr(), "no retention policy: everything is kept (docaxis retention set --record 10y ...)")
		return nil
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tPART\tENVELOPE\tFROM\tTO\tSHA-256\tMESSAGES\tKEPT UNTIL\tHELD BY")
	row := func(action string, it retention.Item) {
		sum := "-"
		if it.SHA256 != "" {
			sum = it.SHA256[:16] + "…"
		}
		held := "-"
		if len(it.HeldBy) > 0 {
			held = fmt.Sprint(it.HeldBy)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", action, it.Part, it.Envelope, it.Sender, it.Recipient, sum, len(it.Seqs),
			it.Until.Local().Format(time.DateOnly), held)
	}
	for _, it := range p.Remove {
		row("remove", it)
	}
	for _, it := range p.Held {
		row("keep", it)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%d to remove, %d kept by legal holds\n", len(p.Remove), len(p.Held))
	return nil
}

var retentionApplyCmd = &cobra.Command{
	Use:   "apply [--json]",
	Short: "remove what the retention plan says now (held items are kept and listed)",
	Args:  cobra.NoArgs,
	RunE: withRetention(func(cmd *cobra.Command, _ []string, r *retention.Retention) error {
		res, err := r.Apply(cmd.Context())
		if res != nil && retentionFlags.json {
			if perr := printJSON(cmd, res); perr != nil {
				return perr
			}
		} else if res != nil {
			for _, it := range res.Plan.Held {
				fmt.Fprintf(cmd.OutOrStdout(), "kept %s %s %s: %v\n", it.Part, it.Envelope, it.SHA256, it.HeldBy)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d record message(s), %d tracking pair(s), %d attachment(s); %d kept by legal holds\n",
				res.Messages, res.Pairs, res.Attachments, len(res.Plan.Held)+len(res.Skipped))
		}
		return err
	}),
}

var retentionHoldCmd = &cobra.Command{
	Use:   "hold (--agency CODE | --document ID) --reason TEXT",
	Short: "put a legal hold: retention never removes what it names",
	Args:  cobra.NoArgs,
	RunE: withRetention(func(cmd *cobra.Command, _ []string, r *retention.Retention) error {
		scope, target, err := holdTarget()
		if err != nil {
			return err
		}
		if err := r.Place(cmd.Context(), retention.Hold{Scope: scope, Target: target, Reason: retentionFlags.reason, By: operatorName()}); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "legal hold on %s %s\n", scope, target)
		return nil
	}),
}

var retentionReleaseCmd = &cobra.Command{
	Use:   "release (--agency CODE | --document ID)",
	Short: "lift a legal hold",
	Args:  cobra.NoArgs,
	RunE: withRetention(func(cmd *cobra.Command, _ []string, r *retention.Retention) error {
		scope, target, err := holdTarget()
		if err != nil {
			return err
		}
		if err := r.Release(cmd.Context(), scope, target); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "legal hold on %s %s lifted\n", scope, target)
		return nil
	}),
}

var retentionHoldsCmd = &cobra.Command{
	Use:   "holds [--json]",
	Short: "list the legal holds",
	Args:  cobra.NoArgs,
	RunE: withRetention(func(cmd *cobra.Command, _ []string, r *retention.Retention) error {
		list, err := r.Holds(cmd.Context())
		if err != nil {
			return err
		}
		if retentionFlags.json {
			for _, h := range list {
				if err := printJSON(cmd, h); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SCOPE\tTARGET\tPLACED\tBY\tREASON")
		for _, h := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Scope, h.Target, h.Placed.Local().Format(time.DateTime), h.By, h.Reason)
		}
		return tw.Flush()
	}),
}

func holdTarget() (scope, target string, err error) {
	f := retentionFlags
	switch {
	case f.agency != "" && f.document != "":
		return "", "", errors.New("--agency and --document: choose one")
	case f.agency != "":
		return retention.ScopeAgency, f.agency, nil
	case f.document != "":
		return retention.ScopeDocument, f.document, nil
	}
	return "", "", errors.New("name what to hold: --agency CODE or --document ID")
}

// operatorName is who set a policy or a hold, for the record.
func operatorName() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

func withRetention(run func(cmd *cobra.Command, args []string, r *retention.Retention) error) func(*cobra.Command, []string) error {
	return withClient(func(cmd *cobra.Command, args []string, c *broker.Client) error {
		r, err := retention.Open(cmd.Context(), c, c.Store(), 0)
		if err != nil {
			return err
		}
		return run(cmd, args, r)
	})
}

func init() {
	pf := retentionCmd.PersistentFlags()
	pf.BoolVar(&retentionFlags.json, "json", false, "print JSON")
	s := retentionSetCmd.Flags()
	s.Var(&retentionFlags.record, "record", "keep a document's record (copies, statuses, tracking) this long after it was sent, e.g. 10y (0: for ever)")
	s.Var(&retentionFlags.statuses, "statuses", "keep status messages this long, e.g. 5y (0: for ever)")
	s.Var(&retentionFlags.attachments, "attachments", "keep attachment bytes this long after delivery, e.g. 5y (0: for ever)")
	for _, c := range []*cobra.Command{retentionHoldCmd, retentionReleaseCmd} {
		c.Flags().StringVar(&retentionFlags.agency, "agency", "", "every document the agency sent or received")
		c.Flags().StringVar(&retentionFlags.document, "document", "", "one document (envelope id)")
	}
	retentionHoldCmd.Flags().StringVar(&retentionFlags.reason, "reason", "", "why: the order or case the hold is for (required)")
	retentionCmd.AddCommand(retentionSetCmd, retentionPolicyCmd, retentionPlanCmd, retentionApplyCmd, retentionHoldCmd, retentionReleaseCmd, retentionHoldsCmd)
	rootCmd.AddCommand(retentionCmd)

	serveCmd.Flags().DurationVar(&retentionFlags.every, "retention-every", 0, "apply the retention policy this often, e.g. 24h (0: never; see docaxis retention)")
}

// retentionLeaseDuty names the lease of the one serve process that
// applies the policy on its schedule (several serve on one cluster).
const retentionLeaseDuty = "retention"

// startRetention applies the policy on a schedule when --retention-every
// is set: first one interval after the start, not at it, so that a bus
// restarted in a loop does not run it in a loop. With several serve on
// one cluster, the one holding the lease does.
func startRetention(ctx context.Context, env *serveEnv) (func(), error) {
	every := retentionFlags.every
	if every <= 0 {
		return nil, nil
	}
	r, err := retention.Open(ctx, env.Service.Client, env.Service.Client.Store(), serveReplicas(), retention.WithLogger(env.Log))
	if err != nil {
		return nil, err
	}
	el, err := lease.New(ctx, env.Service.Client.JetStream(), retentionLeaseDuty, lease.Config{Replicas: serveReplicas(), Logger: env.Log})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		el.Run(rctx, func(ctx context.Context) {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-t.C:
				case <-ctx.Done():
					return
				}
				res, err := r.Apply(ctx)
				if res != nil {
					env.Log.Info("retention applied", "messages", res.Messages, "pairs", res.Pairs, "attachments", res.Attachments,
						"held", len(res.Plan.Held)+len(res.Skipped))
				}
				if err != nil && ctx.Err() == nil {
					env.Log.Error("retention", "err", err)
				}
			}
		})
	}()
	env.Log.Info("retention runs on a schedule", "every", every)
	return func() { cancel(); <-done }, nil
}

// serveReplicas is the replicas of what serve creates: --replicas, or 1
// embedded and 3 on an external cluster.
func serveReplicas() int {
	if serveFlags.replicas > 0 {
		return serveFlags.replicas
	}
	if serveFlags.nats != "" {
		return 3
	}
	return 1
}
