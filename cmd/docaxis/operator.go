package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/spf13/cobra"
)

// `docaxis operator token`: tokens for the operator's page (/operator on
// the HTTP listener), and what serve hands the page.

var operatorFlags struct {
	revoke string
	list   bool
	json   bool
}

var operatorCmd = &cobra.Command{
	Use:   "operator",
	Short: "the operators of the bus: tokens for the operator's page",
}

var operatorTokenCmd = &cobra.Command{
	Use:   "token NAME | --revoke TOKEN | --list",
	Short: "make a token for the operator's page (printed as the last line), revoke one, or list them",
	Long: `Make a bearer token that signs in to the operator's page (/operator on the
HTTP listener) and its API (/v1/operator). NAME is who holds it: it is written
in the audit trail of what they do there. The token is printed once, as the last
line, and kept nowhere: the bus stores only its SHA-256. Agency tokens do not
open the operator's page, nor operator tokens the agencies' API.`,
	Args: func(cmd *cobra.Command, args []string) error {
		if operatorFlags.revoke != "" || operatorFlags.list {
			return cobra.NoArgs(cmd, args)
		}
		return cobra.ExactArgs(1)(cmd, args)
	},
	RunE: func(cmd *cobra.Command, args []string) error {
		c, err := connect(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := cmd.Context()
		tokens, err := httpapi.OpenOperatorTokens(ctx, c.JetStream(), httpapi.TokensConfig{Replicas: serveReplicas()})
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		switch {
		case operatorFlags.revoke != "":
			info, err := tokens.Revoke(ctx, operatorFlags.revoke)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "revoked operator token %s… of %s\n", info.Hash[:12], info.Name)
			return nil
		case operatorFlags.list:
			list, err := tokens.List(ctx)
			if err != nil {
				return err
			}
			if operatorFlags.json {
				for _, t := range list {
					if err := printJSON(cmd, map[string]any{"name": t.Name, "hash": t.Hash, "created": t.Created, "revoked": t.Revoked}); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SHA-256\tOPERATOR\tCREATED\tREVOKED")
			for _, t := range list {
				revoked := "-"
				if t.Revoked != nil {
					revoked = t.Revoked.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s…\t%s\t%s\t%s\n", t.Hash[:12], t.Name, t.Created.Local().Format(time.DateTime), revoked)
			}
			return tw.Flush()
		}
		token, _, err := tokens.Create(ctx, args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "operator token for %s (shown once; sign in at /operator on the HTTP listener):\n", args[0])
		fmt.Fprintln(out, token)
		return nil
	},
}

func init() {
	f := operatorTokenCmd.Flags()
	f.StringVar(&operatorFlags.revoke, "revoke", "", "revoke this operator token")
	f.BoolVar(&operatorFlags.list, "list", false, "list operator tokens (hashes only)")
	f.BoolVar(&operatorFlags.json, "json", false, "with --list: one JSON object per token")
	operatorCmd.AddCommand(operatorTokenCmd)
	rootCmd.AddCommand(operatorCmd)
}

// operatorConfig is what the operator's page reads on this bus. Document
// systems are not wired yet: the page lists the system ids agencies name.
func operatorConfig(env *serveEnv, tokens *httpapi.OperatorTokens) *httpapi.OperatorConfig {
	cfg := &httpapi.OperatorConfig{Auth: tokens, Replicas: serveReplicas(), Links: fedLinks{env}, Systems: operatorSystems{env.Service.Client}}
	if env.Alerts != nil {
		cfg.Alerts = env.Alerts
	}
	return cfg
}

// fedLinks reads the federation's links when asked (none on a bus on its
// own).
type fedLinks struct{ env *serveEnv }

func (f fedLinks) Links(ctx context.Context) ([]httpapi.OperatorLink, error) {
	fed := f.env.Federation
	if fed == nil {
		return nil, nil
	}
	st, err := fed.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.OperatorLink, 0, len(st.Links))
	for _, l := range st.Links {
		out = append(out, httpapi.OperatorLink{Peer: l.Peer, State: l.State, RTT: l.RTT, Backlog: l.Backlog, LastDelivery: l.LastDelivery, Error: l.Error})
	}
	return out, nil
}
