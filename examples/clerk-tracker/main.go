// Command clerk-tracker is a clerk's live table of the documents an agency
// sent: one row per (document, recipient) with its state, redrawn as
// receipts and statuses arrive; overdue documents are marked.
//
// Against the bus of `make run`, after dms-publisher's commands: the table
// of what 000.00.00.G22 sent (drop --once to keep it live).
//
//	go run ./examples/clerk-tracker --home .docaxis --as 000.00.00.G22 --once
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/signing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "clerk-tracker:", err)
		os.Exit(1)
	}
}

// table holds the latest state of each (envelope, recipient) the agency sent.
type table struct {
	rows map[string]*broker.Tracking
}

func (t *table) apply(tr *broker.Tracking) { t.rows[tr.Envelope+"|"+tr.Recipient] = tr }

func (t *table) render(w io.Writer, as string, clear bool) {
	if clear {
		fmt.Fprint(w, "\033[H\033[2J")
	}
	fmt.Fprintf(w, "Documents sent by %s — %s\n\n", as, time.Now().Format("2006-01-02 15:04:05"))
	keys := make([]string, 0, len(t.rows))
	for k := range t.rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENVELOPE\tSUBJECT\tRECIPIENT\tSTATE\tDUE\tUPDATED")
	for _, k := range keys {
		r := t.rows[k]
		state := strings.ToUpper(string(r.State))
		if r.Overdue {
			state += " (QUÁ HẠN)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Envelope[:13], trim(r.Subject, 40), r.Recipient, state, r.DueDate, r.Updated.Local().Format("15:04:05"))
	}
	tw.Flush()
}

func trim(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("clerk-tracker", flag.ContinueOnError)
	server := fs.String("server", envOr("DOCAXIS_SERVER", "nats://127.0.0.1:4222"), "bus URL (env DOCAXIS_SERVER)")
	home := fs.String("home", envOr("DOCAXIS_HOME", ".docaxis"), "docaxis home (CA; the bus's or the agency's credentials) (env DOCAXIS_HOME)")
	creds := fs.String("creds", os.Getenv("DOCAXIS_CREDS"), "the agency's NATS credentials (docaxis agency creds CODE; default HOME/agencies/CODE/nats.creds when present)")
	as := fs.String("as", "", "agency whose sent documents to follow")
	once := fs.Bool("once", false, "print the table once and exit")
	until := fs.Int("until-rows", 0, "exit once this many rows are in a final state (for scripts and tests)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := []broker.Option{}
	if ks, err := signing.OpenKeystore(*home); err == nil {
		if ca, err := ks.CACert(); err == nil {
			opts = append(opts, broker.WithTrust(signing.NewTrust(ca)))
		}
	}
	if path := credsFile(*creds, *home, *as); path != "" {
		opts = append(opts, broker.WithAgencyCredentials(path))
	}
	c, err := broker.Connect(ctx, *server, opts...)
	if err != nil {
		return fmt.Errorf("%w (a bus with authentication takes the agency's credentials: docaxis agency creds %s)", err, *as)
	}
	defer c.Close()
	updates, err := c.Watch(ctx, *as)
	if err != nil {
		return err
	}
	t := &table{rows: map[string]*broker.Tracking{}}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	interactive := !*once && *until == 0
	dirty := true
	for {
		select {
		case tr, ok := <-updates:
			if !ok {
				return nil
			}
			if tr.Sender == *as {
				t.apply(tr)
				dirty = true
			}
			continue
		case <-tick.C:
		case <-ctx.Done():
			return nil
		}
		if dirty {
			t.render(out, *as, interactive)
			dirty = false
		}
		if *once {
			return nil
		}
		if *until > 0 && t.final() >= *until {
			return nil
		}
	}
}

// final counts rows no longer moving without the recipient's clerk.
func (t *table) final() int {
	n := 0
	for _, r := range t.rows {
		switch r.State {
		case "done", "rejected", "invalid", "recall-accepted":
			n++
		}
	}
	return n
}

// credsFile is the agency's credentials file: the one given, else the one
// `docaxis agency creds CODE` wrote under home, else none (a bus without
// authentication).
func credsFile(given, home, code string) string {
	if given != "" {
		return given
	}
	path := filepath.Join(home, "agencies", code, "nats.creds")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	return ""
}

// envOr is the environment variable name, or def when it is unset.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
