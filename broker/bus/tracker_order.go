package bus

import (
	"context"
	"errors"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// Statuses ahead of their copy. The tracker sees the record in order on one
// process, but not across processes or failures: with several `serve` on
// a cluster, the copy and its receipt may go to two trackers, and a copy in
// the hands of a tracker that died comes back only after the consumer's
// ack wait, while the receipt stored after it is delivered at once. A
// status for a pair no copy has made yet is then asked for again a little
// later, for as long as the copy may still be on its way, rather than
// dropped; past that, or when no copy of its envelope is in flight, it is
// what it always was, a status for an envelope never sent to the reporter.

// copyPending: the status's pair is not tracked yet; look again after
// delay, which its deliveries so far decide (copyPendingDelay).
type copyPending struct{ delay time.Duration }

func (copyPending) Error() string { return "status ahead of its copy" }

// copyPendingDelays space the looks at a status ahead of its copy. They
// double, so that a few looks (each a read of the tracking bucket and of
// the record) cover the tracker's ack wait (30 s), past which a copy in a
// dead tracker's hands has been delivered again: 1+2+4+8+8+8+8 = 39 s.
var copyPendingDelays = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second, 8 * time.Second}

// copyPendingDeliveries bounds the looks: the first and one after each
// delay.
var copyPendingDeliveries = uint64(len(copyPendingDelays) + 1)

// copyPendingDelay is the wait before the next look at a status delivered
// n times.
func copyPendingDelay(n uint64) time.Duration {
	return copyPendingDelays[min(max(n, 1)-1, uint64(len(copyPendingDelays)-1))]
}

// floorTTL is how long the tracker consumer's ack floor, read once, serves
// every worker's look.
const floorTTL = 200 * time.Millisecond

// maxCopyScan bounds the copies from a sender to a reporter read while
// looking for the one a status is about; past it, the copy may be there.
const maxCopyScan = 64

// copyMayBePending tells whether a status about envelope of, from reporter
// to sender, delivered as meta says, may still be ahead of its copy: a
// copy of that envelope from sender to reporter is in the record before
// it and not acknowledged by the tracker yet (past its ack floor). Only
// such a copy can still make the pair; a status without one is an orphan,
// dropped at once, whatever else is still in flight (orphans no longer
// wait on each other).
//
// The floor must be read before the pair was (haveFloor): a copy
// acknowledged after the read of its pair, and before a floor read after
// it, would be neither in the pair nor past the floor. Without haveFloor
// the floor is read here, and only "pending" can be trusted.
func (t *Tracker) copyMayBePending(ctx context.Context, meta *jetstream.MsgMetadata, floor uint64, haveFloor bool, sender, reporter, of string) bool {
	if meta.NumDelivered >= copyPendingDeliveries {
		return false
	}
	if !haveFloor {
		var err error
		if floor, err = t.ackFloor(ctx); err != nil {
			return true // cannot tell: ask again later
		}
	}
	if floor+1 >= meta.Sequence.Stream {
		return false
	}
	found, err := t.copyBetween(ctx, record.DocSubject(reporter, sender), of, floor+1, meta.Sequence.Stream)
	return err != nil || found
}

// copyBetween tells whether a copy on subject in the record from sequence
// from up to (not with) to is about envelope id, as its payload says
// (unverified: it only decides to look again later).
func (t *Tracker) copyBetween(ctx context.Context, subject, id string, from, to uint64) (bool, error) {
	for seq, n := from, 0; seq < to; n++ {
		if n == maxCopyScan {
			return true, nil
		}
		msg, err := t.rec.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if msg.Sequence >= to {
			return false, nil
		}
		if key, err := envelope.RouteKey(msg.Data); err == nil && key == id {
			return true, nil
		}
		seq = msg.Sequence + 1
	}
	return false, nil
}

// ackFloor reads the tracker consumer's ack floor, at most once a floorTTL
// for all the workers: one consumer info per floorTTL, however many
// statuses are ahead of (or without) their copy. An older floor is only
// lower: a status looks again, never is dropped early.
func (t *Tracker) ackFloor(ctx context.Context) (uint64, error) {
	t.floorMu.Lock()
	defer t.floorMu.Unlock()
	if time.Since(t.floorAt) < floorTTL {
		return t.floor, nil
	}
	cons, err := t.js.Consumer(ctx, record.Stream, record.TrackerDurable)
	if err != nil {
		return 0, err
	}
	t.floor, t.floorAt = cons.CachedInfo().AckFloor.Stream, time.Now()
	return t.floor, nil
}
