// Command dms-subscriber is the receiving side of a document-management
// system: it follows its agency's mailbox, saves every verified document's
// attachments, prints one JSON line per document, and can accept each one.
// The bus sends the signed delivered receipt once the handler returns nil.
//
// Against the bus of `make run`, after dms-publisher's commands: receive
// what was sent to 000.00.00.H41, save it, accept it (drop --count to
// follow the mailbox until interrupted).
//
//	go run ./examples/dms-subscriber --home .docaxis --as 000.00.00.H41 --out incoming --accept --count 1
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "dms-subscriber:", err)
		os.Exit(1)
	}
}

type record struct {
	ID          string   `json:"id"`
	From        string   `json:"from"`
	Subject     string   `json:"subject"`
	Attachments []string `json:"attachments"`
	Accepted    bool     `json:"accepted"`
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("dms-subscriber", flag.ContinueOnError)
	server := fs.String("server", envOr("DOCAXIS_SERVER", "nats://127.0.0.1:4222"), "bus URL (env DOCAXIS_SERVER)")
	home := fs.String("home", envOr("DOCAXIS_HOME", ".docaxis"), "docaxis home with the agency's key and the CA (env DOCAXIS_HOME)")
	creds := fs.String("creds", os.Getenv("DOCAXIS_CREDS"), "the agency's NATS credentials (docaxis agency creds CODE; default HOME/agencies/CODE/nats.creds when present)")
	as := fs.String("as", "", "receiving agency code")
	dir := fs.String("out", "incoming", "folder for attachments (one sub-folder per envelope)")
	accept := fs.Bool("accept", false, "mark each document accepted once saved")
	count := fs.Int("count", 0, "stop after this many documents (0: run until interrupted)")
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

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var marks sync.WaitGroup
	markErrs := make(chan error, 1)
	seen := 0
	mb, err := c.Mailbox(ctx, *as, broker.SaveAttachments(*dir))
	if err != nil {
		return err
	}
	err = mb.Consume(ctx, func(ctx context.Context, d *broker.Delivery) error {
		rec := record{ID: d.Envelope.ID, From: d.Envelope.From, Subject: d.Envelope.Subject, Attachments: []string{}}
		for _, s := range d.Saved {
			rec.Attachments = append(rec.Attachments, s.Path)
		}
		mu.Lock()
		defer mu.Unlock()
		rec.Accepted = *accept
		if *accept {
			// Acceptance follows the delivered receipt, which the mailbox
			// sends once this handler returns.
			marks.Add(1)
			go func(id string) {
				defer marks.Done()
				if err := acceptWhenDelivered(c, *as, id); err != nil {
					select {
					case markErrs <- err:
					default:
					}
				}
			}(d.Envelope.ID)
		}
		if err := json.NewEncoder(out).Encode(rec); err != nil {
			return err
		}
		seen++
		if *count > 0 && seen >= *count {
			cancel()
		}
		return nil
	})
	if err != nil {
		return err
	}
	marks.Wait()
	select {
	case err := <-markErrs:
		return err
	default:
		return nil
	}
}

func acceptWhenDelivered(c *broker.Client, as, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.WaitState(ctx, id, as, envelope.StateDelivered); err != nil {
		return err
	}
	_, err := c.Mark(ctx, as, id, envelope.StateAccepted, broker.MarkOptions{Note: "Đã tiếp nhận"})
	return err
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
