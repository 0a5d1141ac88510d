package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// progressThreshold: smaller transfers finish before a bar is worth it.
const progressThreshold = 8 << 20

// progressFor returns a progress callback drawing a bar on stderr for
// transfers over 8 MiB when stderr is a terminal and output is not JSON.
func progressFor(cmd *cobra.Command, name string, size int64, jsonOut bool) func(int64) {
	if jsonOut || size < progressThreshold || !isTerminal(cmd.ErrOrStderr()) {
		return nil
	}
	p := &progress{w: cmd.ErrOrStderr(), name: name, size: size, start: time.Now()}
	return p.update
}

type progress struct {
	mu    sync.Mutex
	w     io.Writer
	name  string
	size  int64
	start time.Time
	last  time.Time
}

func (p *progress) update(done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < 200*time.Millisecond && done < p.size {
		return
	}
	p.last = now
	el := now.Sub(p.start).Seconds()
	rate := float64(done) / max(el, 1e-3)
	eta := "--"
	if rate > 0 && p.size > done {
		eta = time.Duration(float64(p.size-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	pct := float64(done) * 100 / float64(max(p.size, 1))
	const width = 30
	n := int(pct / 100 * width)
	bar := make([]byte, width)
	for i := range bar {
		if i < n {
			bar[i] = '='
		} else {
			bar[i] = ' '
		}
	}
	fmt.Fprintf(p.w, "\r%s [%s] %5.1f%% %s/%s %s/s ETA %s ", p.name, bar, pct, human(done), human(p.size), human(int64(rate)), eta)
	if done >= p.size {
		fmt.Fprintln(p.w)
	}
}

func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
