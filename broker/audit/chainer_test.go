package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// links reads the whole chain back and checks it is one unbroken line
// over stream sequences 1..n.
func checkChain(t *testing.T, ab *auditBus, n uint64) {
	t.Helper()
	ctx := ctxT(t)
	s, err := ab.js.Stream(ctx, audit.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prev, want := audit.GenesisHash, uint64(1)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != audit.LinkSubject {
			if _, err := audit.VerifyCheckpoint(m.Data, ab.Trust.Roots()); err != nil {
				t.Fatalf("checkpoint at %d: %v", seq, err)
			}
			continue
		}
		var l audit.Link
		if err := json.Unmarshal(m.Data, &l); err != nil {
			t.Fatal(err)
		}
		if l.Seq != want || l.Prev != prev || !l.Valid() {
			t.Fatalf("link at audit seq %d = seq %d prev %s valid %v; want seq %d prev %s", seq, l.Seq, l.Prev, l.Valid(), want, prev)
		}
		prev, want = l.Hash, want+1
	}
	if want-1 != n {
		t.Fatalf("chain covers %d records, want %d", want-1, n)
	}
}

// A chainer stopped (or crashed) and started again goes on from its last
// link: records stored meanwhile are linked once, in order.
func TestChainerResumes(t *testing.T) {
	ab := startAuditBus(t)
	ab.send(govOffice, ngheAn)
	ab.checkpoint()
	// Crash: no shutdown checkpoint, connection gone.
	ab.nc.Close()
	ab.chainer = nil
	ab.send(govOffice, sonLa, ngheAn)
	ab.startChainer()
	ab.send(ngheAn, govOffice)
	cp := ab.checkpoint()
	if cp.Seq != 4 {
		t.Fatalf("checkpoint covers seq %d, want 4", cp.Seq)
	}
	checkChain(t, ab, 4)
}

// Two chainers on one bus never fork the chain: every write expects the
// audit stream's last sequence, so the loser reloads and goes on.
func TestTwoChainersDoNotFork(t *testing.T) {
	ab := startAuditBus(t)
	second, err := audit.StartChainer(ctxT(t), ab.js, audit.ChainerConfig{Key: ab.key, Interval: 50 * time.Millisecond, Batch: 3, Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	c := ab.Client(govOffice)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 15 {
				if _, err := c.Send(ctxT(t), envelope.New(govOffice, []string{ngheAn}, "song song")); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	ab.checkpoint()
	if _, err := second.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkChain(t, ab, 60)
}

// The chainer signs a checkpoint at its interval, and a last one at stop.
func TestChainerCheckpointsOnIntervalAndStop(t *testing.T) {
	ab := startAuditBus(t)
	ab.stopChainer()
	c, err := audit.StartChainer(ctxT(t), ab.js0(t), audit.ChainerConfig{Key: ab.key, Interval: 100 * time.Millisecond, LeaseTTL: 2 * time.Second, Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ab.send(govOffice, ngheAn)
	js := ab.js0(t)
	last := func() *audit.SignedCheckpoint {
		s, _ := js.Stream(ctxT(t), audit.StreamName)
		m, err := s.GetLastMsgForSubject(ctxT(t), audit.CheckpointSubject)
		if err != nil {
			return nil
		}
		cp, err := audit.VerifyCheckpoint(m.Data, ab.Trust.Roots())
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	deadline := time.Now().Add(30 * time.Second) // both waits below; the lease first (a stopped holder may not have released it)
	bustest.Eventually(t, time.Until(deadline), "no interval checkpoint of seq 1", func() error {
		if cp := last(); cp == nil || cp.Seq != 1 {
			return fmt.Errorf("last checkpoint %+v", cp)
		}
		return nil
	})
	if cp := last(); cp.Reason != "interval" {
		t.Fatalf("reason %q", cp.Reason)
	}
	ab.send(ngheAn, govOffice)
	// Linked, so that stop has it to seal.
	bustest.Eventually(t, time.Until(deadline), "record 2 never linked", func() error {
		if h := c.Head(); h.Seq != 2 {
			return fmt.Errorf("head at seq %d", h.Seq)
		}
		return nil
	})
	final, err := c.Stop(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if final == nil || final.Seq != 2 || final.Reason != "shutdown" {
		// The interval may have sealed seq 2 first; then stop has nothing new.
		if cp := last(); cp.Seq != 2 {
			t.Fatalf("final checkpoint %+v, last %+v", final, cp)
		}
	}
}

func (ab *auditBus) js0(t *testing.T) jetstream.JetStream {
	js, err := jetstream.New(ab.Client().Conn())
	if err != nil {
		t.Fatal(err)
	}
	return js
}
