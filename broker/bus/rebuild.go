package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go/jetstream"
)

// The tracker's durable consumer carries the version of the rules that
// made the tracking bucket. Tracking is derived from the record alone, so
// a bus home kept by an earlier version (which made pairs, roles and
// attachment access from copies and statuses it had not verified) is
// brought to this version's rules by rebuilding it from the record: the
// bucket is emptied and the record replayed by the verifying tracker.
const (
	trackerVersion     = "2"
	metaTrackerVersion = "docaxis_tracker_version"
	// metaTrackerSweep, while set, holds "<record seq> <time>": once the
	// rebuild has passed that sequence, attachment access entries not
	// written again since that time came from copies that no longer
	// count, and are removed.
	metaTrackerSweep = "docaxis_tracker_sweep"
)

// refSweep is a pending removal of stale attachment access entries.
type refSweep struct {
	through uint64    // the record sequence the rebuild must pass first
	since   time.Time // entries last written before it are stale
}

func (t *Tracker) consumerConfig(meta map[string]string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       record.TrackerDurable,
		Description:   "docaxis tracker: keeps AXIS_TRACK from the record",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 20000,
		Metadata:      meta,
	}
}

// ensureConsumer returns the tracker's consumer, rebuilding the tracking
// first when the consumer is missing or was made by an earlier version. It
// returns the attachment access sweep still to do, if any.
func (t *Tracker) ensureConsumer(ctx context.Context) (jetstream.Consumer, *refSweep, error) {
	cur, err := t.js.Consumer(ctx, record.Stream, record.TrackerDurable)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, nil, fmt.Errorf("tracker consumer: %w", err)
	}
	if err == nil {
		meta := cur.CachedInfo().Config.Metadata
		if meta[metaTrackerVersion] == trackerVersion {
			return cur, parseSweep(meta[metaTrackerSweep]), nil
		}
		// Earlier rules: start again from the record. The consumer goes
		// first, so a crash midway finds no consumer and starts over.
		if err := t.js.DeleteConsumer(ctx, record.Stream, record.TrackerDurable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, nil, fmt.Errorf("tracker: remove the consumer of an earlier version: %w", err)
		}
	}
	rec, err := t.js.Stream(ctx, record.Stream)
	if err != nil {
		return nil, nil, fmt.Errorf("tracker: open stream %s: %w", record.Stream, err)
	}
	last := rec.CachedInfo().State.LastSeq
	bucket, err := t.js.Stream(ctx, record.KVStream(record.TrackBucket))
	if err != nil {
		return nil, nil, fmt.Errorf("tracker: open bucket %s: %w", record.TrackBucket, err)
	}
	if n := bucket.CachedInfo().State.Msgs; n > 0 {
		t.log.Warn("tracker: rebuilding the tracking from the record (first start of a version that tracks only verified copies and statuses)",
			"entries", n, "record_last_seq", last)
		if err := bucket.Purge(ctx); err != nil {
			return nil, nil, fmt.Errorf("tracker: empty bucket %s for the rebuild: %w", record.TrackBucket, err)
		}
	}
	meta := map[string]string{metaTrackerVersion: trackerVersion}
	var sweep *refSweep
	if last > 0 {
		sweep = &refSweep{through: last, since: time.Now().UTC()}
		meta[metaTrackerSweep] = strconv.FormatUint(sweep.through, 10) + " " + sweep.since.Format(time.RFC3339Nano)
	}
	cons, err := t.js.CreateOrUpdateConsumer(ctx, record.Stream, t.consumerConfig(meta))
	if err != nil {
		return nil, nil, fmt.Errorf("tracker consumer: %w", err)
	}
	return cons, sweep, nil
}

func parseSweep(v string) *refSweep {
	seq, at, ok := strings.Cut(v, " ")
	if !ok {
		return nil
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return nil
	}
	since, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return nil
	}
	return &refSweep{through: n, since: since}
}

// sweepInterval spaces the checks of the rebuild's progress.
var sweepInterval = 2 * time.Second

// sweepRefs waits until the rebuild has passed sw.through, then removes
// the attachment access entries it did not write again: they came from
// copies that do not verify (or no longer exist). Uploads
// (record.UploadRefKey) stay: the attachment service wrote them, not the
// tracker, and no copy in the record writes them again. Entries are
// removed only at the revision read, so one written meanwhile stays. Until
// then the old entries stay: removing them first would let a garbage
// collection take attachments still referenced.
func (t *Tracker) sweepRefs(ctx context.Context, cons jetstream.Consumer, sw refSweep) {
	for {
		info, err := cons.Info(ctx)
		if err == nil && (info.AckFloor.Stream >= sw.through || (info.NumPending == 0 && info.NumAckPending == 0)) {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(sweepInterval):
		}
	}
	lister, err := t.refs.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		t.finishSweep(ctx, cons, 0)
		return
	}
	if err != nil {
		t.log.Warn("tracker: attachment access sweep postponed", "err", err)
		return
	}
	var keys []string
	for k := range lister.Keys() {
		if !record.IsUploadRefKey(k) {
			keys = append(keys, k)
		}
	}
	removed := 0
	for _, k := range keys {
		e, err := t.refs.Get(ctx, k)
		if err != nil {
			continue // gone meanwhile, or unreadable now: the next start sweeps again
		}
		if !e.Created().Before(sw.since) {
			continue
		}
		if err := t.refs.Delete(ctx, k, jetstream.LastRevision(e.Revision())); err != nil {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		removed++
	}
	t.finishSweep(ctx, cons, removed)
}

func (t *Tracker) finishSweep(ctx context.Context, cons jetstream.Consumer, removed int) {
	// Only this version's key: the server keeps its own metadata itself.
	meta := map[string]string{metaTrackerVersion: trackerVersion}
	if _, err := t.js.CreateOrUpdateConsumer(ctx, record.Stream, t.consumerConfig(meta)); err != nil {
		t.log.Warn("tracker: attachment access sweep done, not recorded (it runs again at the next start)", "err", err)
	}
	t.log.Info("tracker: rebuild done; attachment access from copies that do not verify removed", "removed", removed)
}
