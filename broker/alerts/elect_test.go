package alerts_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/alerts"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/lease"
)

// Two `serve` on one cluster: one process checks the rules and notifies,
// so an alert is raised once; the other's page reads the alerts on
// record. When the checking one stops, the other takes over with the
// alerts on record and raises nothing again.
func TestOneProcessChecksAndNotifies(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	js := bus.Service.Client.JetStream()
	disk := t.TempDir()
	src := alerts.Sources{Disk: alerts.DirDisk{Dir: disk}}
	cfg := alerts.Config{Interval: 20 * time.Millisecond, DiskFull: 1e-9}

	var mu sync.Mutex
	var raised []string
	elect := func(name string) *lease.Election {
		el, err := lease.New(ctxT(t), js, alerts.LeaseDuty, lease.Config{TTL: 10 * time.Second, Holder: name, Logger: bustest.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		return el
	}
	start := func(name string) *electedProc {
		m, err := alerts.New(ctxT(t), js, cfg, src, alerts.WithLogger(bustest.Logger()), alerts.WithElection(elect(name)), alerts.WithNotify(func(e alerts.Event) {
			if e.Type == alerts.EventRaised {
				mu.Lock()
				raised = append(raised, name+": "+e.Alert.ID)
				mu.Unlock()
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		p := &electedProc{m: m, cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(p.done)
			m.Run(ctx)
		}()
		t.Cleanup(func() { p.stop(); m.Close() })
		return p
	}
	procs := []*electedProc{start("a"), start("b")}
	until := func(what string, ok func() bool) {
		t.Helper()
		bustest.Eventually(t, 15*time.Second, "waited for "+what, func() error {
			if ok() {
				return nil
			}
			return errors.New("not yet")
		})
	}
	until("the disk alert", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(raised) > 0
	})
	var checking *electedProc
	for range 20 {
		checking = nil
		n := 0
		for _, p := range procs {
			if p.m.Checking() {
				checking, n = p, n+1
			}
		}
		if n != 1 {
			t.Fatalf("%d processes check", n)
		}
		time.Sleep(cfg.Interval)
	}
	other := procs[0]
	if other == checking {
		other = procs[1]
	}
	// The other's page: the alert on record.
	until("the alert on the other's page", func() bool {
		l, err := other.m.Alerts(ctxT(t))
		return err == nil && len(l) == 1 && l[0].Subject == disk
	})

	checking.stop()
	until("the other to take over", other.m.Checking)
	time.Sleep(10 * cfg.Interval) // checks of its own
	mu.Lock()
	defer mu.Unlock()
	if len(raised) != 1 {
		t.Fatalf("raised %q, want once", raised)
	}
}

// electedProc is a Manager running with an election, as in serve.
type electedProc struct {
	m      *alerts.Manager
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func (p *electedProc) stop() {
	p.once.Do(func() {
		p.cancel()
		<-p.done
	})
}
