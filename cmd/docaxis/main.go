// Command docaxis is the document interconnection bus: `docaxis serve`
// runs it, the other commands are its clients (see ../../README.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

var rootCmd = &cobra.Command{
	Use:           "docaxis",
	Short:         "docaxis: asynchronous document interconnection bus for government agencies",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	// A reader that stops reading (`| head`, `| grep -q`) ends a command's
	// output as the end of the list would: exit 0. Go's default is death by
	// SIGPIPE (status 141), which fails `set -o pipefail` scripts at random,
	// depending on whether the reader left before the last write.
	signal.Ignore(syscall.SIGPIPE)
	rootCmd.SetOut(stdout{os.Stdout})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := rootCmd.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "docaxis:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

// stdout is standard output that ends the command quietly once its reader
// has gone. Everything a command hands over comes before what it prints
// about it (an envelope is acknowledged before its line), so nothing is
// left half done.
type stdout struct{ f *os.File }

func (o stdout) Write(b []byte) (int, error) {
	n, err := o.f.Write(b)
	if errors.Is(err, syscall.EPIPE) {
		os.Exit(0)
	}
	return n, err
}
