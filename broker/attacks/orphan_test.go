package attacks_test

import (
	"sync"
	"testing"

	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
)

// H99 floods G22 with signed statuses about envelopes never sent to it,
// each about an id of its own. The tracker drops them at the first look
// (no copy of their envelope is in flight): none makes a pair, and none is
// asked again and again while the others hold the tracker's ack floor
// back (504 looks again for 40 orphans before, 12 each).
func TestTrackingOrphanStatusFlood(t *testing.T) {
	a := newArena(t)
	const orphans = 40
	var (
		mu    sync.Mutex
		looks = map[uint64]int{}
	)
	bustest.OnTrackerNak(t, a.admin.Conn(), func(seq uint64) {
		mu.Lock()
		looks[seq]++
		mu.Unlock()
	})
	nc, _ := a.raw(attacker)
	seqs := make([]uint64, 0, orphans)
	for range orphans {
		st := envelope.NewStatus(attacker, victimSender, envelope.NewID(), envelope.StateDelivered)
		st.Status.Digest = envelope.Digest([]byte("nothing"))
		seqs = append(seqs, trackPublish(t, nc, record.StatusSubject(victimSender, attacker), a.trackSeal(attacker, st)))
	}
	a.trackWait(seqs[len(seqs)-1])
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, seq := range seqs {
		total += looks[seq]
	}
	t.Logf("%d orphan statuses asked again %d times in all", orphans, total)
	// A look may fail now and then under load (a read of the record that
	// timed out): once each at most.
	if total > orphans {
		t.Errorf("%d orphan statuses were asked again %d times, at most %d", orphans, total, orphans)
	}
}
