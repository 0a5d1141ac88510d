package bus

import (
	"context"
	"errors"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go/jetstream"
)

// Statuses ahead of their copy. The tracker sees the record in order on one
// process, but not across processes or failures: with several `serve` on
// a cluster, the copy and its receipt may go to two trackers, and a copy in
// the hands of a tracker that died comes back only after the consumer's
// ack wait, while the receipt stored after it is delivered at once. A
// status for a pair no copy has made yet is then asked for again a little
// later, for as long as the copy may still be on its way, rather than
// dropped; past that, it is what it always was, a status for an envelope
// never sent to the reporter.

// errCopyPending: the status's pair is not tracked yet; try it later.
var errCopyPending = errors.New("status ahead of its copy")

// copyPendingDelay spaces the attempts of a status ahead of its copy.
const copyPendingDelay = time.Second

// copyPendingDeliveries bounds them: past the tracker's ack wait (30 s),
// a copy in a dead tracker's hands has been delivered again.
const copyPendingDeliveries = 45

// copyMayBePending tells whether a status delivered as meta says may still
// be ahead of its copy: some message before it in the record is not
// acknowledged yet (the copy precedes its status). When everything before
// it is done, the status is an orphan and is dropped at once.
func (t *Tracker) copyMayBePending(ctx context.Context, meta *jetstream.MsgMetadata) bool {
	if meta.NumDelivered >= copyPendingDeliveries {
		return false
	}
	cons, err := t.js.Consumer(ctx, record.Stream, record.TrackerDurable)
	if err != nil {
		return true // cannot tell: ask again later
	}
	return cons.CachedInfo().AckFloor.Stream+1 < meta.Sequence.Stream
}
