package audit_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
)

// warnCounter is a slog handler that counts (and keeps) warnings and
// errors: a chainer that is not the writer must stay quiet.
type warnCounter struct {
	mu   sync.Mutex
	msgs []string
	n    atomic.Int64
}

func (w *warnCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnCounter) Handle(_ context.Context, r slog.Record) error {
	w.n.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	line := r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	w.msgs = append(w.msgs, line)
	return nil
}
func (w *warnCounter) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnCounter) WithGroup(string) slog.Handler      { return w }

func (w *warnCounter) lines() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.msgs...)
}

type electedChainer struct {
	nc   *nats.Conn
	c    *audit.Chainer
	warn *warnCounter
}

// Two chainers started at once (two `serve` on one bus) write one chain:
// one of them writes, the other stays quiet (no warning at all); when the
// writer dies, the other takes over within the lease's TTL and the chain
// goes on unbroken.
func TestTwoChainersStartedAtOnceElectOneWriter(t *testing.T) {
	ab := startAuditBus(t)
	ab.stopChainer()
	ab.js = ab.js0(t) // checkChain reads the audit stream with it
	chainers := make([]*electedChainer, 2)
	var wg sync.WaitGroup
	for i := range chainers {
		nc, js := ab.Connect(t)
		w := &warnCounter{}
		chainers[i] = &electedChainer{nc: nc, warn: w}
		wg.Go(func() {
			c, err := audit.StartChainer(ctxT(t), js, audit.ChainerConfig{Key: ab.key, Interval: 100 * time.Millisecond, Batch: 3,
				LeaseTTL: 2 * time.Second, Logger: slog.New(w)})
			if err != nil {
				t.Error(err)
				return
			}
			chainers[i].c = c
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	c := ab.Client(govOffice)
	send := func(n int) {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range n / 4 {
					if _, err := c.Send(ctxT(t), envelope.New(govOffice, []string{ngheAn}, "song song")); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
	}
	send(60)
	// Either chainer answers a checkpoint request: the writer does.
	for _, ch := range chainers {
		if cp, err := ch.c.Checkpoint(ctxT(t)); err != nil || cp.Seq != 60 {
			t.Fatalf("checkpoint: %+v, %v; want seq 60", cp, err)
		}
	}
	leaders := 0
	writer := 0
	for i, ch := range chainers {
		if ch.c.Leading() {
			leaders++
			writer = i
		}
	}
	if leaders != 1 {
		t.Fatalf("%d chainers write the chain, want 1", leaders)
	}
	for i, ch := range chainers {
		if ch.warn.n.Load() != 0 {
			t.Errorf("chainer %d logged %d warnings: %q", i, ch.warn.n.Load(), ch.warn.lines())
		}
	}

	// The writer dies (its connection goes, no shutdown, no release).
	chainers[writer].nc.Close()
	other := chainers[1-writer]
	send(20)
	bustest.Eventually(t, 30*time.Second, "the surviving chainer never took over", func() error {
		if !other.c.Leading() {
			return errors.New("not leading")
		}
		return nil
	})
	if cp, err := other.c.Checkpoint(ctxT(t)); err != nil || cp.Seq != 80 {
		t.Fatalf("checkpoint after the handover: %+v, %v; want seq 80", cp, err)
	}
	if other.warn.n.Load() != 0 {
		t.Errorf("the surviving chainer logged %d warnings: %q", other.warn.n.Load(), other.warn.lines())
	}
	if _, err := other.c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkChain(t, ab, 80)
}
