// Command dms-publisher is what a document-management system does to send
// a signed document through docaxis: load its agency key, attach files,
// send, and wait until every recipient has answered with a receipt.
//
// Against the bus of `make run` (in another terminal), from the
// repository root: register two agencies (their keys and NATS credentials
// go into .docaxis), then send as one to the other. The credentials are
// found in the home (-creds to give others); -server and -home default to
// DOCAXIS_SERVER and DOCAXIS_HOME as for docaxis itself.
//
//	bin/docaxis agency add 000.00.00.G22 --name "Văn phòng Chính phủ"
//	bin/docaxis agency add 000.00.00.H41 --name "UBND tỉnh Nghệ An"
//	go run ./examples/dms-publisher --home .docaxis --as 000.00.00.G22 --to 000.00.00.H41 \
//	    --subject "Về việc thử nghiệm trục liên thông" --file README.md
//
// With --wait 30s it waits for every recipient's signed receipt (run
// dms-subscriber for 000.00.00.H41 meanwhile).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dms-publisher:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("dms-publisher", flag.ContinueOnError)
	server := fs.String("server", envOr("DOCAXIS_SERVER", "nats://127.0.0.1:4222"), "bus URL (env DOCAXIS_SERVER)")
	home := fs.String("home", envOr("DOCAXIS_HOME", ".docaxis"), "docaxis home with the agency's key and the CA (env DOCAXIS_HOME)")
	creds := fs.String("creds", os.Getenv("DOCAXIS_CREDS"), "the agency's NATS credentials (docaxis agency creds CODE; default HOME/agencies/CODE/nats.creds when present)")
	as := fs.String("as", "", "sending agency code")
	to := fs.String("to", "", "recipients, comma separated")
	subject := fs.String("subject", "", "subject")
	due := fs.String("due", "", "due date YYYY-MM-DD")
	wait := fs.Duration("wait", 0, "wait this long for every recipient's delivered receipt")
	var files fileList
	fs.Var(&files, "file", "attachment (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	ks, err := signing.OpenKeystore(*home)
	if err != nil {
		return err
	}
	ca, err := ks.CACert()
	if err != nil {
		return err
	}
	opts := []broker.Option{broker.WithKeystore(ks), broker.WithTrust(signing.NewTrust(ca))}
	if path := credsFile(*creds, *home, *as); path != "" {
		opts = append(opts, broker.WithAgencyCredentials(path))
	}
	c, err := broker.Connect(ctx, *server, opts...)
	if err != nil {
		return fmt.Errorf("%w (a bus with authentication takes the agency's credentials: docaxis agency creds %s)", err, *as)
	}
	defer c.Close()

	e := envelope.New(*as, strings.Split(*to, ","), *subject)
	if *due != "" {
		e.Document = &envelope.Document{DueDate: *due}
	}
	var attach []broker.File
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		attach = append(attach, broker.File{Name: filepath.Base(path), Reader: f, Size: st.Size()})
	}
	res, err := c.Send(ctx, e, attach...)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "sent %s to %s\n", res.ID, strings.Join(res.Recipients, ", "))
	if *wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, *wait)
		defer cancel()
		for _, r := range res.Recipients {
			t, err := c.WaitState(wctx, res.ID, r, envelope.StateDelivered)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s delivered at %s\n", r, t.Updated.Format(time.RFC3339))
		}
	}
	fmt.Fprintln(out, res.ID)
	return nil
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
