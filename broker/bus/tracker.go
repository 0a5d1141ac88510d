package bus

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bucket"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Tracker follows the record and keeps the tracking bucket: a copy stored
// in a mailbox makes its pair "sent", and each verified status moves the
// pair through the state machine. It runs inside `docaxis serve`; it is the
// only writer of the tracking bucket.
//
// Only verified data makes state: a copy counts only when its signature,
// chain, validity (at the time the bus recorded it) and subject verify,
// and its envelope id is bound (AXIS_IDS) to its sender; a status counts
// only for a pair such a copy made. Anything else is logged and left in
// the record, where the recipient's side quarantines it.
type Tracker struct {
	js jetstream.JetStream
	// rec is the record stream, read by copyMayBePending (tracker_order.go).
	rec  jetstream.Stream
	kv   jetstream.KeyValue
	refs jetstream.KeyValue
	ids  jetstream.KeyValue
	// recordedAt, when set, gives the time a status was recorded (see
	// Client.recordedAt).
	recordedAt func(h nats.Header, from string, stored time.Time) time.Time
	// remote, when set, tells an agency served by another bus.
	remote func(agency string) bool
	// systemOf, when set, tells the system serving an agency ("" none):
	// it holds what the agency holds, and reads what it may read.
	systemOf  func(agency string) string
	verifier  *signing.Verifier
	log       *slog.Logger
	cc        jetstream.ConsumeContext
	shards    []chan jetstream.Msg
	wg        sync.WaitGroup
	stopSweep context.CancelFunc
	sweepWG   sync.WaitGroup
	observers atomic.Pointer[[]func(t *broker.Tracking, prev envelope.State)]
	// floor is the tracker consumer's ack floor as read at floorAt
	// (tracker_order.go).
	floorMu sync.Mutex
	floor   uint64
	floorAt time.Time
}

// NewTracker returns a tracker; verifier checks copies and statuses before
// they count.
func NewTracker(ctx context.Context, js jetstream.JetStream, verifier *signing.Verifier, log *slog.Logger) (*Tracker, error) {
	if verifier == nil {
		return nil, errors.New("tracker: no verifier: only verified copies and statuses may make state")
	}
	t := &Tracker{js: js, verifier: verifier, log: log}
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
	}{{&t.kv, record.TrackBucket}, {&t.refs, record.FileRefsBucket}, {&t.ids, record.IDsBucket}} {
		kv, err := js.KeyValue(ctx, b.name)
		if err != nil {
			return nil, fmt.Errorf("tracker: open bucket %s: %w", b.name, err)
		}
		*b.kv = kv
	}
	rec, err := js.Stream(ctx, record.Stream)
	if err != nil {
		return nil, fmt.Errorf("tracker: open stream %s: %w", record.Stream, err)
	}
	t.rec = rec
	if t.log == nil {
		t.log = slog.Default()
	}
	return t, nil
}

// trackerShards is how many workers apply the record in parallel. Messages
// about one envelope always go to the same worker, so each pair still sees
// its statuses in record order.
const trackerShards = 16

// Observe registers fn to be called after a pair's tracking changed, with
// the state before the change ("" for a new pair). It may be called while
// the tracker runs (changes before it are not seen); fn is called from
// several goroutines at once.
func (t *Tracker) Observe(fn func(t *broker.Tracking, prev envelope.State)) {
	for {
		old := t.observers.Load()
		var next []func(*broker.Tracking, envelope.State)
		if old != nil {
			next = append(next, *old...)
		}
		next = append(next, fn)
		if t.observers.CompareAndSwap(old, &next) {
			return
		}
	}
}

// Start consumes the record from where the tracker left off. The first
// start of this version on a bus home kept by an earlier one rebuilds the
// tracking from the record (see rebuild.go).
func (t *Tracker) Start(ctx context.Context) error {
	cons, sweep, err := t.ensureConsumer(ctx)
	if err != nil {
		return err
	}
	t.shards = make([]chan jetstream.Msg, trackerShards)
	for i := range t.shards {
		ch := make(chan jetstream.Msg, 256)
		t.shards[i] = ch
		cache := newEntryCache(4096)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			for msg := range ch {
				if err := t.handle(context.Background(), cache, msg); err != nil {
					var pending copyPending // tracker_order.go
					if errors.As(err, &pending) {
						_ = msg.NakWithDelay(pending.delay)
						continue
					}
					t.log.Warn("tracker: retry later", "subject", msg.Subject(), "err", err)
					_ = msg.NakWithDelay(time.Second)
					continue
				}
				_ = msg.Ack()
			}
		}()
	}
	t.cc, err = cons.Consume(func(msg jetstream.Msg) {
		t.shards[shardOf(msg)%trackerShards] <- msg
	}, jetstream.PullMaxMessages(1000))
	if err != nil {
		for _, ch := range t.shards {
			close(ch) // the workers end: Stop has nothing to stop
		}
		t.wg.Wait()
		t.cc = nil
		return fmt.Errorf("tracker consume: %w", err)
	}
	if sweep != nil {
		sctx, cancel := context.WithCancel(context.Background())
		t.stopSweep = cancel
		t.sweepWG.Add(1)
		go func() {
			defer t.sweepWG.Done()
			t.sweepRefs(sctx, cons, *sweep)
		}()
	}
	return nil
}

// shardOf picks a worker by the envelope a message is about, read from the
// payload: a copy and the statuses about it then go to one worker in record
// order, whatever headers their publishers set (a copy reusing another's
// envelope id is judged after the first one, never before it). The header
// the bus sets is the fallback for payloads that cannot be read.
func shardOf(msg jetstream.Msg) uint32 {
	key, err := envelope.RouteKey(msg.Data())
	if err != nil {
		key = msg.Headers().Get(record.HeaderEnvelope)
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32()
}

// Stop stops consuming after the messages in hand.
func (t *Tracker) Stop() {
	if t.stopSweep != nil {
		t.stopSweep()
		t.sweepWG.Wait()
		t.stopSweep = nil
	}
	if t.cc != nil {
		t.cc.Drain()
		<-t.cc.Closed()
		for _, ch := range t.shards {
			close(ch)
		}
		t.wg.Wait()
		t.cc = nil
	}
}

// handle returns an error only for a transient problem worth a retry; a
// message that can never count is logged and acknowledged (it stays in the
// record, and the recipient's side quarantines bad envelopes).
func (t *Tracker) handle(ctx context.Context, cache *entryCache, msg jetstream.Msg) error {
	meta, err := msg.Metadata()
	if err != nil {
		return err
	}
	rs, ok := record.ParseSubject(msg.Subject())
	kind, a, b := rs.Kind, rs.To, rs.From
	if !ok {
		return nil
	}
	switch kind {
	case record.KindDoc:
		return t.onDocument(ctx, cache, msg.Data(), msg.Headers(), a, b, meta)
	case record.KindStatus:
		return t.onStatus(ctx, cache, msg.Data(), msg.Headers(), a, b, meta)
	}
	return nil
}

// verify opens raw and checks it as the recipient's side does: signature,
// chain, validity and revocation at the time the bus recorded it. The
// copies of a fan-out are the same bytes and come to one worker one after
// the other: the signature, a function of the bytes alone, is checked for
// the first; the checks that depend on the time are made for each.
func (t *Tracker) verify(cache *entryCache, raw []byte, hdr nats.Header, meta *jetstream.MsgMetadata) (*envelope.Signed, error) {
	sum := sha256.Sum256(raw)
	s := cache.opened
	if s == nil || cache.openedSum != sum {
		var err error
		if s, err = envelope.Open(raw); err != nil {
			return nil, err
		}
		cache.opened, cache.openedSum = s, sum
	}
	at := meta.Timestamp
	if t.recordedAt != nil {
		at = t.recordedAt(hdr, s.Envelope.From, meta.Timestamp)
	}
	if err := t.verifier.Check(s, signing.At(at)); err != nil {
		return nil, err
	}
	return s, nil
}

func (t *Tracker) onDocument(ctx context.Context, cache *entryCache, raw []byte, hdr nats.Header, to, from string, meta *jetstream.MsgMetadata) error {
	s, err := t.verify(cache, raw, hdr, meta)
	if err != nil {
		// The recipient's side refuses it too (invalid receipt, quarantine);
		// what did not verify names no sender, no recipient, no attachment.
		t.log.Info("tracker: copy not tracked: it does not verify", "seq", meta.Sequence.Stream, "subject_from", from, "subject_to", to, "err", err)
		return nil
	}
	e := s.Envelope
	if e.Kind == envelope.KindStatus || e.From != from || !slices.Contains(e.To, to) || !envelope.IsID(e.ID) {
		t.log.Warn("tracker: copy not tracked: it does not match its subject", "seq", meta.Sequence.Stream, "envelope", e.ID,
			"kind", e.Kind, "from", e.From, "subject_from", from, "subject_to", to)
		return nil
	}
	if ok, err := t.bind(ctx, cache, e.ID, from); err != nil {
		return err
	} else if !ok {
		t.log.Warn("tracker: copy not tracked: its envelope id is bound to another sender", "seq", meta.Sequence.Stream, "envelope", e.ID, "from", from)
		return nil
	}
	// Attachment access first: the recipient's side may be fetching the
	// copy already, and waits for it (see Mailbox.process). Only for bytes
	// the sender holds: listing a hash in a signed envelope is no proof.
	for _, a := range e.Attachments {
		if len(a.SHA256) != 64 {
			continue
		}
		if ok, err := t.holds(ctx, a.SHA256, from); err != nil {
			return err
		} else if !ok {
			t.log.Warn("tracker: no attachment access granted: the sender never uploaded, sent or received it", "seq", meta.Sequence.Stream, "envelope", e.ID, "from", from, "sha256", a.SHA256)
			continue
		}
		for _, who := range t.readers(from, to) {
			if _, err := t.refs.Put(ctx, record.FileRefKey(a.SHA256, who), []byte(e.ID)); err != nil {
				return fmt.Errorf("record attachment access: %w", err)
			}
		}
	}
	at := meta.Timestamp.UTC()
	due := ""
	if e.Document != nil {
		due = e.Document.DueDate
	}
	_, err = t.update(ctx, cache, record.TrackKey(from, e.ID, to), true, false, func(tr *broker.Tracking, exists bool) (bool, error) {
		if exists && tr.Subject != "" {
			return false, nil // a redelivered copy
		}
		tr.Envelope, tr.Sender, tr.Recipient = e.ID, from, to
		tr.Kind, tr.Refers, tr.Subject, tr.Created, tr.DueDate = e.Kind, e.Refers, e.Subject, e.Created, due
		tr.Digest, tr.Seq = s.Digest(), meta.Sequence.Stream
		ev := broker.Event{State: envelope.StateSent, At: at, By: from, Seq: meta.Sequence.Stream}
		if !exists {
			tr.State, tr.Updated = envelope.StateSent, at
			tr.History = []broker.Event{ev}
		} else {
			tr.History = append([]broker.Event{ev}, tr.History...)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if e.Kind == envelope.KindUpdate || e.Kind == envelope.KindReplace || e.Kind == envelope.KindRevoke {
		return t.onBusiness(ctx, cache, e, to, at, meta)
	}
	return nil
}

// bind binds envelope id to sender in AXIS_IDS unless it is bound already,
// and reports whether it is bound to sender: every copy of a fan-out and
// every redelivery reuse the id, another sender may not.
func (t *Tracker) bind(ctx context.Context, cache *entryCache, id, sender string) (bool, error) {
	if got, ok := cache.ids[id]; ok {
		return got == sender, nil
	}
	_, err := t.ids.Create(ctx, id, []byte(sender))
	if errors.Is(err, jetstream.ErrKeyExists) {
		var e jetstream.KeyValueEntry
		if e, err = t.ids.Get(ctx, id); err == nil {
			cache.bound(id, string(e.Value()))
			return string(e.Value()) == sender, nil
		}
	}
	if err != nil {
		return false, fmt.Errorf("bind envelope id %s to %s: %w", id, sender, err)
	}
	cache.bound(id, sender)
	return true, nil
}

// onBusiness records on the referenced envelope's tracking that it was
// updated, replaced, or asked to be recalled.
func (t *Tracker) onBusiness(ctx context.Context, cache *entryCache, e *envelope.Envelope, to string, at time.Time, meta *jetstream.MsgMetadata) error {
	return t.updateConfirmed(ctx, cache, record.TrackKey(e.From, e.Refers, to), nil, func(tr *broker.Tracking, exists, leader bool) (bool, error) {
		if !exists {
			if !leader {
				return false, errPairMissing
			}
			return false, nil
		}
		switch e.Kind {
		case envelope.KindUpdate:
			if slices.Contains(tr.UpdatedBy, e.ID) {
				return false, nil
			}
			tr.UpdatedBy = append(tr.UpdatedBy, e.ID)
		case envelope.KindReplace:
			if slices.Contains(tr.ReplacedBy, e.ID) {
				return false, nil
			}
			tr.ReplacedBy = append(tr.ReplacedBy, e.ID)
		case envelope.KindRevoke:
			// As a status: once per signed revoke, and only where the
			// state machine allows a recall (not after done, rejected or
			// a recall answered).
			ev := broker.Event{State: envelope.StateRecallRequested, Code: envelope.StateRecallRequested.Code(), At: at, By: e.From, Reason: e.Reason, Status: e.ID, Seq: meta.Sequence.Stream}
			if seen(tr.History, e.ID) {
				return false, nil
			}
			if err := envelope.CheckTransition(tr.State, ev.State); err != nil {
				return refuseEvent(tr, ev, err), nil
			}
			t.apply(tr, ev)
		}
		return true, nil
	})
}

func (t *Tracker) onStatus(ctx context.Context, cache *entryCache, raw []byte, hdr nats.Header, sender, reporter string, meta *jetstream.MsgMetadata) error {
	s, err := t.verify(cache, raw, hdr, meta)
	if err != nil {
		t.log.Warn("tracker: status not counted", "seq", meta.Sequence.Stream, "reporter", reporter, "err", err)
		return nil
	}
	e := s.Envelope
	if e.Kind != envelope.KindStatus || e.From != reporter || e.To[0] != sender {
		t.log.Warn("tracker: status does not match its subject", "seq", meta.Sequence.Stream, "subject_sender", sender, "subject_reporter", reporter)
		return nil
	}
	st := e.Status
	ev := broker.Event{State: st.State, Code: st.State.Code(), At: e.Created, By: reporter, Note: st.Note, Reason: st.Reason, Staff: st.Staff, Status: e.ID,
		Seq: meta.Sequence.Stream, Recorded: meta.Timestamp.UTC()}
	// An orphan is dropped for good, so it is decided on the leader's word
	// only, read after the ack floor (tracker_order.go).
	var floor uint64
	readFloor := func(ctx context.Context) (err error) {
		floor, err = t.ackFloor(ctx)
		return err
	}
	pending := false
	err = t.updateConfirmed(ctx, cache, record.TrackKey(sender, st.Of, reporter), readFloor, func(tr *broker.Tracking, exists, leader bool) (bool, error) {
		if !exists || tr.Seq == 0 {
			if testHookStatusUntracked != nil {
				testHookStatusUntracked(meta.Sequence.Stream)
			}
			if pending = t.copyMayBePending(ctx, meta, floor, leader, sender, reporter, st.Of); pending {
				return false, nil // tracker_order.go
			}
			if !leader {
				return false, errPairMissing
			}
			// Only a verified copy makes a pair: a receipt from an agency
			// the sender never wrote to must not make it a recipient.
			t.log.Warn("tracker: status for an envelope never sent to the reporter", "seq", meta.Sequence.Stream, "envelope", st.Of, "sender", sender, "reporter", reporter, "state", st.State)
			return false, nil
		}
		if seen(tr.History, e.ID) {
			return false, nil // the same signed status seen again
		}
		if (st.State == envelope.StateDelivered || st.State == envelope.StateInvalid) && st.Digest != "" && tr.Digest != "" && st.Digest != tr.Digest {
			// A receipt for other bytes: another envelope reusing the id
			// (or an unsigned one claiming it) reached the recipient, not
			// this pair's copy.
			return refuseEvent(tr, ev, fmt.Errorf("%s receipt for other bytes (SHA-256 %s) than the copy tracked (%s)", st.State, st.Digest, tr.Digest)), nil
		}
		if err := envelope.CheckTransition(tr.State, st.State); err != nil {
			return refuseEvent(tr, ev, err), nil
		}
		if tr.State == st.State && st.State == envelope.StateDelivered {
			return false, nil // a receipt for a redelivered copy
		}
		if st.State == envelope.StateDelivered && st.Details != nil {
			tr.Details = st.Details
		}
		t.apply(tr, ev)
		return true, nil
	})
	if err == nil && pending {
		return copyPending{copyPendingDelay(meta.NumDelivered)}
	}
	return err
}

// testHookStatusUntracked, when set by a test, is called when a status's
// pair was read and not found, before judging whether it is an orphan.
var testHookStatusUntracked func(seq uint64)

// maxRefused bounds the refused statuses kept on a pair.
const maxRefused = 50

// seen tells whether events hold the signed statement id.
func seen(events []broker.Event, id string) bool {
	return slices.ContainsFunc(events, func(h broker.Event) bool { return h.Status == id })
}

// refuseEvent records ev, which the state machine refused with err, among
// the pair's refused events (once per signed statement), and tells
// whether the pair changed.
func refuseEvent(tr *broker.Tracking, ev broker.Event, err error) bool {
	if seen(tr.Refused, ev.Status) {
		return false
	}
	ev.Reason = err.Error()
	tr.Refused = append(tr.Refused, ev)
	if len(tr.Refused) > maxRefused {
		// A reporter repeating refused statuses must not grow the entry
		// past what a message may carry: the latest are kept here, all of
		// them stay in the record.
		tr.Refused = tr.Refused[len(tr.Refused)-maxRefused:]
	}
	return true
}

func (t *Tracker) apply(tr *broker.Tracking, ev broker.Event) {
	tr.State, tr.Code, tr.Updated = ev.State, ev.Code, ev.At
	if ev.State == envelope.StateInvalid || ev.State == envelope.StateRejected {
		tr.Reason = ev.Reason
		if tr.Reason == "" {
			tr.Reason = ev.Note
		}
	}
	tr.History = append(tr.History, ev)
}

// update reads, changes and writes one tracking entry with optimistic
// concurrency, so that two trackers (several serve processes on a cluster)
// never lose each other's changes. The worker's cache saves the read when
// it wrote the entry last; a stale cache fails the revision check and the
// entry is read again. likelyNew skips the read for a first write.
func (t *Tracker) update(ctx context.Context, cache *entryCache, key string, likelyNew, leader bool, fn func(tr *broker.Tracking, exists bool) (bool, error)) (*broker.Tracking, error) {
	for attempt := 0; attempt < 10; attempt++ {
		var tr broker.Tracking
		var rev uint64
		exists := false
		if c, ok := cache.get(key); ok && attempt == 0 && !leader {
			tr, rev, exists = cloneTracking(c.tr), c.rev, true
		} else if !likelyNew || attempt > 0 {
			value, r, found, err := t.read(ctx, key, leader)
			if err != nil {
				return nil, fmt.Errorf("read tracking %s: %w", key, err)
			}
			if found {
				if err := json.Unmarshal(value, &tr); err != nil {
					return nil, fmt.Errorf("decode tracking %s: %w", key, err)
				}
				rev, exists = r, true
			}
		}
		prev := tr.State
		changed, err := fn(&tr, exists)
		if err != nil || !changed {
			return &tr, err
		}
		b, err := json.Marshal(&tr)
		if err != nil {
			return nil, err
		}
		if exists {
			rev, err = t.kv.Update(ctx, key, b, rev)
		} else {
			rev, err = t.kv.Create(ctx, key, b)
		}
		if err == nil {
			cache.put(key, &cachedEntry{tr: tr, rev: rev})
			if obs := t.observers.Load(); obs != nil {
				// Observers see the entry as a reader of the bucket would.
				seen := tr
				seen.Revision, seen.Overdue = rev, seen.OverdueAt(time.Now())
				for _, fn := range *obs {
					fn(&seen, prev)
				}
			}
			return &tr, nil
		}
		cache.drop(key)
		if !bucket.Conflict(err) {
			return nil, fmt.Errorf("write tracking %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("write tracking %s: too many concurrent updates", key)
}

// errPairMissing: fn of updateConfirmed would let its message go, for a
// pair it did not find.
var errPairMissing = errors.New("tracking pair not found")

// updateConfirmed is update for a message that lets go of a pair it does
// not find: fn says so with errPairMissing, and the pair is read again
// through the bucket's leader (the first read may be the worker's cache,
// or a replica behind the leader), after settle when set, and fn called
// again with leader set, where a missing pair is the leader's word.
func (t *Tracker) updateConfirmed(ctx context.Context, cache *entryCache, key string, settle func(context.Context) error, fn func(tr *broker.Tracking, exists, leader bool) (bool, error)) error {
	_, err := t.update(ctx, cache, key, false, false, func(tr *broker.Tracking, exists bool) (bool, error) {
		return fn(tr, exists, false)
	})
	if !errors.Is(err, errPairMissing) {
		return err
	}
	if settle != nil {
		if err := settle(ctx); err != nil {
			return err
		}
	}
	_, err = t.update(ctx, cache, key, false, true, func(tr *broker.Tracking, exists bool) (bool, error) {
		return fn(tr, exists, true)
	})
	return err
}

// read reads a tracking entry: from any replica (a direct get), or from
// the bucket's leader when leader is set.
func (t *Tracker) read(ctx context.Context, key string, leader bool) (value []byte, rev uint64, found bool, err error) {
	if leader {
		lctx, cancel := context.WithTimeout(ctx, leaderReadTimeout)
		defer cancel()
		return broker.LeaderKey(lctx, t.js.Conn(), record.TrackBucket, key)
	}
	e, err := t.kv.Get(ctx, key)
	switch {
	case err == nil:
		return e.Value(), e.Revision(), true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil, 0, false, nil
	}
	return nil, 0, false, err
}

// leaderReadTimeout bounds a read through a bucket's leader; past it the
// message is looked at again later.
const leaderReadTimeout = 10 * time.Second

type cachedEntry struct {
	tr  broker.Tracking
	rev uint64
}

// cloneTracking copies the slices fn may append to, so a failed write
// leaves the cached entry as it was.
func cloneTracking(t broker.Tracking) broker.Tracking {
	t.History = append([]broker.Event(nil), t.History...)
	t.Refused = append([]broker.Event(nil), t.Refused...)
	t.UpdatedBy = append([]string(nil), t.UpdatedBy...)
	t.ReplacedBy = append([]string(nil), t.ReplacedBy...)
	return t
}

// entryCache is a worker's bounded cache of the entries it wrote; it is
// used by one goroutine only.
type entryCache struct {
	max int
	m   map[string]*cachedEntry
	// ids are the senders envelope ids are bound to: the copies of a
	// fan-out come to one worker, and only the first asks the bucket.
	ids map[string]string
	// opened is the last message opened (signature checked), by the
	// SHA-256 of its bytes.
	opened    *envelope.Signed
	openedSum [sha256.Size]byte
}

func newEntryCache(max int) *entryCache {
	return &entryCache{max: max, m: map[string]*cachedEntry{}, ids: map[string]string{}}
}

func (c *entryCache) bound(id, sender string) {
	if len(c.ids) >= c.max {
		for k := range c.ids { // a binding never changes: any one may go
			delete(c.ids, k)
			break
		}
	}
	c.ids[id] = sender
}

func (c *entryCache) get(key string) (*cachedEntry, bool) {
	e, ok := c.m[key]
	return e, ok
}

func (c *entryCache) put(key string, e *cachedEntry) {
	if len(c.m) >= c.max {
		for k := range c.m { // evict an arbitrary entry: a miss costs one read
			delete(c.m, k)
			break
		}
	}
	c.m[key] = e
}

func (c *entryCache) drop(key string) { delete(c.m, key) }

// holds reports whether agency holds the attachment whose SHA-256 is sum:
// it uploaded it (record.UploadRefKey) or sent or received an envelope listing it
// (record.FileRefKey). A sender served by another bus of a federation is judged
// by its own bus, whose federation service pushed the bytes here.
func (t *Tracker) holds(ctx context.Context, sum, agency string) (bool, error) {
	if t.remote != nil && t.remote(agency) {
		return true, nil
	}
	system := ""
	if t.systemOf != nil {
		system = t.systemOf(agency)
	}
	return record.Holds(ctx, t.refs, broker.LeaderCheck(t.js.Conn(), record.FileRefsBucket, leaderReadTimeout), sum, agency, system)
}

// readers are who may read the attachments of a copy from `from` to `to`:
// both agencies and the systems serving them.
func (t *Tracker) readers(from, to string) []string {
	out := []string{from, to}
	if t.systemOf != nil {
		for _, a := range []string{from, to} {
			if sys := t.systemOf(a); sys != "" {
				out = append(out, record.SystemActor(sys))
			}
		}
	}
	return out
}
