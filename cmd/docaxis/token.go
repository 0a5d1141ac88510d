package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/spf13/cobra"
)

var agencyTokenFlags struct {
	revoke    string
	revokeAll bool
	list      bool
	json      bool
	system    string
}

var agencyTokenCmd = &cobra.Command{
	Use:   "token (CODE | --system ID) [--revoke TOKEN | --revoke-all | --list]",
	Short: "make an HTTP API token for an agency (printed as the last line), or revoke its tokens",
	Long: `Make a bearer token for the HTTP API and the clerks' page, acting as agency
CODE. The token is printed once, as the last line, and kept nowhere: the bus
stores only its SHA-256. Revoke one with --revoke TOKEN, or all of the
agency's with --revoke-all; revocation takes effect at the next request.

With --system ID instead of CODE, the token is a document system's: it acts
for any agency the system serves, named in each request with ?as=CODE (or
the X-Docaxis-As header), and for no other. It dies with the system.`,
	Args: cobra.RangeArgs(0, 1),
	RunE: func(cmd *cobra.Command, args []string) error {
		f := agencyTokenFlags
		code := ""
		switch {
		case f.system != "" && len(args) == 0:
			code = broker.SystemActor(f.system)
		case f.system == "" && len(args) == 1:
			code = args[0]
		default:
			return errors.New("name an agency CODE or a --system ID (one of them)")
		}
		if f.revoke != "" && f.revokeAll {
			return errors.New("--revoke and --revoke-all: choose one")
		}
		c, err := connect(cmd)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := cmd.Context()
		tokens, err := httpapi.OpenTokens(ctx, c.JetStream(), httpapi.TokensConfig{})
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		switch {
		case f.revoke != "":
			if err := tokens.Revoke(ctx, code, f.revoke); err != nil {
				return err
			}
			fmt.Fprintf(out, "revoked token %s… of %s\n", httpapi.HashToken(f.revoke)[:12], code)
			return nil
		case f.revokeAll:
			n, err := tokens.RevokeAll(ctx, code)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "revoked %d token(s) of %s\n", n, code)
			return nil
		case f.list:
			list, err := tokens.List(ctx, code)
			if err != nil {
				return err
			}
			if f.json {
				for _, t := range list {
					if err := printJSON(cmd, map[string]any{"agency": t.Agency, "hash": t.Hash, "created": t.Created, "revoked": t.Revoked}); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SHA-256\tCREATED\tREVOKED")
			for _, t := range list {
				revoked := "-"
				if t.Revoked != nil {
					revoked = t.Revoked.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s…\t%s\t%s\n", t.Hash[:12], t.Created.Local().Format(time.DateTime), revoked)
			}
			return tw.Flush()
		}
		if f.system != "" {
			if _, err := c.LookupSystem(ctx, f.system); err != nil {
				return err
			}
		} else if _, err := c.LookupAgency(ctx, code); err != nil {
			return err
		}
		token, info, err := tokens.Create(ctx, code)
		if err != nil {
			return err
		}
		if f.json {
			if f.system != "" {
				return printJSON(cmd, map[string]any{"system": f.system, "token": token, "created": info.Created})
			}
			return printJSON(cmd, map[string]any{"agency": code, "token": token, "created": info.Created})
		}
		if f.system != "" {
			fmt.Fprintf(cmd.ErrOrStderr(), "token for system %s: shown once, keep it secret; it acts for the system's agencies with ?as=CODE (revoke: docaxis agency token --system %s --revoke TOKEN)\n", f.system, f.system)
		} else {
			fmt.Fprintf(cmd.ErrOrStderr(), "token for %s: shown once, keep it secret (revoke: docaxis agency token %s --revoke TOKEN)\n", code, code)
		}
		fmt.Fprintln(out, token)
		return nil
	},
}

func init() {
	f := agencyTokenCmd.Flags()
	f.StringVar(&agencyTokenFlags.revoke, "revoke", "", "revoke this token of the agency")
	f.BoolVar(&agencyTokenFlags.revokeAll, "revoke-all", false, "revoke every token of the agency")
	f.BoolVar(&agencyTokenFlags.list, "list", false, "list the agency's tokens (by hash; tokens are not kept)")
	f.BoolVar(&agencyTokenFlags.json, "json", false, "print JSON")
	f.StringVar(&agencyTokenFlags.system, "system", "", "a document system's token (acts for its agencies with ?as=CODE) instead of an agency's")
	agencyCmd.AddCommand(agencyTokenCmd)
}
