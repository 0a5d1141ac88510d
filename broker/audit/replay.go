package audit

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go/jetstream"
)

// ReaderConfig configures a Reader.
type ReaderConfig struct {
	// Verifier re-verifies records. Its Trust should hold the roots,
	// bindings and revocations the bus knows. Required.
	Verifier *signing.Verifier
	// Store holds attachments, for Export with attachments.
	Store storage.Store
	// Workers verifying in parallel (default GOMAXPROCS).
	Workers int
}

// Reader replays the record and exports evidence. It only reads, through
// ephemeral ordered consumers, so it has no effect on live consumers.
type Reader struct {
	js  jetstream.JetStream
	cfg ReaderConfig
}

// NewReader returns a Reader on js.
func NewReader(js jetstream.JetStream, cfg ReaderConfig) (*Reader, error) {
	if cfg.Verifier == nil || cfg.Verifier.Trust == nil {
		return nil, errors.New("audit reader: no verifier with a trust")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	return &Reader{js: js, cfg: cfg}, nil
}

// Query selects records by the time the bus stored them and by agency.
type Query struct {
	// Since is the first stored time included; zero: from the beginning.
	// The server seeks there: earlier records are not read.
	Since time.Time
	// Until is the first stored time excluded; zero: up to the last record
	// stored when the replay starts.
	Until time.Time
	// Agency keeps only that agency's traffic, in both directions:
	// documents and statuses it sent and those addressed to it.
	Agency string
	// SkipChain leaves out the check of each record against its link.
	SkipChain bool
	// Progress, if set, is called from time to time with the records done
	// and the total expected, and once at the end.
	Progress func(done, total uint64)
}

// Stats sums up a replay.
type Stats struct {
	Records  uint64 `json:"records"`
	Verified uint64 `json:"verified"`
	Failed   uint64 `json:"failed"`
	// Missing counts records the chain names that are gone from the stream.
	Missing uint64 `json:"missing"`
	// Pending counts records stored after the chain's head.
	Pending uint64 `json:"pending"`
	// Broken counts breaks of the audit chain: a link whose hash is not its
	// content's, whose prev is not the hash of the link before it (links
	// removed, inserted or changed), or a start no valid checkpoint
	// anchors. A record whose link follows a break fails (ChainBroken).
	Broken uint64 `json:"broken"`
	// CoveredThrough is the last link a valid checkpoint read along the
	// chain covers; ChainNotes says what the check of the chain found.
	CoveredThrough uint64   `json:"covered_through,omitempty"`
	ChainNotes     []string `json:"chain_notes,omitempty"`
	FirstSeq       uint64   `json:"first_seq,omitempty"`
	LastSeq        uint64   `json:"last_seq,omitempty"`
	// Read counts messages fetched from the record stream: with a start
	// time it is the records from there on, never the history before.
	Read    uint64        `json:"read"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// VerifyTime is the time spent in signature and certificate checks,
	// summed over the workers.
	VerifyTime time.Duration `json:"verify_ns"`
	Workers    int           `json:"workers"`
}

// RecordsPerSecond is the replay's throughput.
func (s *Stats) RecordsPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Records) / s.Elapsed.Seconds()
}

// VerifyShare is the share of the workers' time spent in signature and
// certificate checks (VerifyTime over Elapsed times the workers that could
// run at once).
func (s *Stats) VerifyShare() float64 {
	par := min(s.Workers, runtime.GOMAXPROCS(0))
	if s.Elapsed <= 0 || par == 0 {
		return 0
	}
	return s.VerifyTime.Seconds() / (s.Elapsed.Seconds() * float64(par))
}

type job struct {
	rec  *Record
	done chan struct{}
}

// Replay calls fn for each record of q, in stream order, each re-verified
// and checked against the audit chain. A record that fails verification is
// still passed to fn, with Verified false and the reason; fn's error stops
// the replay and is returned.
func (r *Reader) Replay(ctx context.Context, q Query, fn func(*Record) error) (*Stats, error) {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	src, err := openRecords(ctx, r.js, q)
	if err != nil {
		return nil, err
	}
	defer src.stop()
	var links *linkCursor
	if !q.SkipChain {
		links, err = openLinks(ctx, r.js, q.Since, r.cfg.Verifier.Trust.Roots())
		if err != nil && !errors.Is(err, ErrNoChain) {
			return nil, err
		}
		if links != nil {
			defer links.stop()
		}
	}
	// The directory says which agencies another bus serves: their copies
	// count as recorded when the sender's bus recorded them.
	dir := newBusDirectory(r.js, 0)
	st := &Stats{Workers: r.cfg.Workers}
	var verifyNS atomic.Int64

	cache := newOpenCache(1024)
	work := make(chan *job, 4*r.cfg.Workers)
	order := make(chan *job, 2048)
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Go(func() {
			for j := range work {
				t0 := time.Now()
				verifyRecordCached(r.cfg.Verifier, j.rec, cache)
				verifyNS.Add(int64(time.Since(t0)))
				close(j.done)
			}
		})
	}
	var readErr error
	go func() {
		defer close(work)
		defer close(order)
		for {
			m, err := src.next(ctx)
			if err != nil {
				readErr = err
				return
			}
			if m == nil {
				return
			}
			_, from, _ := subjectFields(m.subject)
			recorded, err := dir.recordedAt(ctx, m.recorded, from, m.time)
			if err != nil {
				readErr = fmt.Errorf("record seq %d: %w", m.seq, err)
				return
			}
			j := &job{rec: newRecordLazy(m.seq, m.time, recorded, m.subject, m.data), done: make(chan struct{})}
			select {
			case order <- j:
			case <-ctx.Done():
				return
			}
			work <- j
		}
	}()
	// Stop the reader before waiting for the workers, on every return.
	defer func() { cancel(); wg.Wait() }()

	emit := func(rec *Record) error {
		st.Records++
		if st.FirstSeq == 0 {
			st.FirstSeq = rec.Seq
		}
		st.LastSeq = rec.Seq
		switch {
		case rec.Chain == ChainMissing:
			st.Missing++
			st.Failed++
		case rec.Verified:
			st.Verified++
		default:
			st.Failed++
		}
		if rec.Chain == ChainPending {
			st.Pending++
		}
		return fn(rec)
	}
	lastProgress := time.Now()
	inRange := func(l *Link) bool {
		return matchesAgency(l.Subject, q.Agency) && !l.Time.Before(q.Since) && (q.Until.IsZero() || l.Time.Before(q.Until))
	}
	onMissing := func(l *Link) error {
		if inRange(l) {
			return emit(missingRecord(l))
		}
		return nil
	}
	for j := range order {
		select {
		case <-j.done:
		case <-ctx.Done():
			return st, ctx.Err()
		}
		rec := j.rec
		switch {
		case q.SkipChain:
			rec.Chain = ChainSkipped
		case links == nil:
			rec.Chain = ChainNone
		default:
			l, err := links.seek(ctx, rec.Seq, onMissing)
			if err != nil {
				return st, err
			}
			switch {
			case l != nil:
				rec.checkLink(l)
				if err := links.breaks[l.Seq]; err != nil && rec.Chain == ChainLinked {
					rec.Chain = ChainBroken
					rec.fail(err)
				}
				if rec.Chain == ChainLinked && !l.Recorded.IsZero() && !l.Recorded.Equal(rec.Recorded) {
					// The chain says when the bus counted it recorded, and
					// the chain is what an export carries: judge by it.
					rec.Recorded = l.Recorded
					t0 := time.Now()
					verifyRecordCached(r.cfg.Verifier, rec, cache)
					verifyNS.Add(int64(time.Since(t0)))
				}
			case links.exhausted() && rec.Seq > links.head:
				rec.Chain = ChainPending
			default:
				rec.Chain = ChainUnlinked
				rec.fail(fmt.Errorf("%w: no link names seq %d although the chain goes past it", ErrUnlinkedRecord, rec.Seq))
			}
		}
		if err := emit(rec); err != nil {
			return st, err
		}
		if q.Progress != nil && time.Since(lastProgress) > 250*time.Millisecond {
			lastProgress = time.Now()
			q.Progress(st.Records, src.total)
		}
	}
	if readErr != nil {
		return st, readErr
	}
	if links != nil {
		// Links after the last record: records removed at the end.
		end := func(l *Link) bool { return l.Seq > src.lastSeq || (!q.Until.IsZero() && !l.Time.Before(q.Until)) }
		if err := links.rest(ctx, end, onMissing); err != nil {
			return st, err
		}
		// The checkpoint covering the last record may come after it.
		if err := links.cover(ctx, st.LastSeq); err != nil {
			return st, err
		}
		st.Broken, st.CoveredThrough = links.broken, links.coveredThrough
		st.ChainNotes = links.notes
		if st.LastSeq > links.coveredThrough && st.LastSeq <= links.head {
			st.ChainNotes = append(st.ChainNotes, fmt.Sprintf("no valid signed checkpoint covers the chain after seq %d: the records after it rest on the stream alone (not checkpointed yet)", links.coveredThrough))
		}
	}
	st.Read = src.fetched
	st.Elapsed = time.Since(start)
	st.VerifyTime = time.Duration(verifyNS.Load())
	if q.Progress != nil {
		q.Progress(st.Records, src.total)
	}
	return st, nil
}

// streamMsg is what the reader keeps of a stored message.
type streamMsg struct {
	seq     uint64
	time    time.Time
	subject string
	data    []byte
	// recorded is the record.HeaderRecorded header ("" when absent).
	recorded string
}

// msgSource reads a bounded slice of a stream through an ordered consumer:
// from a start time, up to the last sequence when it was opened, stopping
// at until.
type msgSource struct {
	it        jetstream.MessagesContext
	remaining uint64
	total     uint64
	fetched   uint64
	lastSeq   uint64
	until     time.Time
	done      bool
	unhook    func() bool
}

func openSource(ctx context.Context, js jetstream.JetStream, stream string, filters []string, since, until time.Time, lastSeq uint64) (*msgSource, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, DeliverPolicy: jetstream.DeliverAllPolicy, NamePrefix: consumerPrefix("audit_read")}
	if !since.IsZero() {
		t := since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("read %s: create consumer: %w", stream, err)
	}
	s := &msgSource{lastSeq: lastSeq, until: until}
	if info := cons.CachedInfo(); info != nil {
		s.remaining = info.NumPending
	}
	s.total = s.remaining
	if s.remaining == 0 || lastSeq == 0 {
		s.done = true
		return s, nil
	}
	if s.it, err = cons.Messages(jetstream.PullMaxMessages(1000)); err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	// Next has no context of its own: stopping the iterator unblocks it.
	it := s.it
	s.unhook = context.AfterFunc(ctx, it.Stop)
	return s, nil
}

func (s *msgSource) next(ctx context.Context) (*streamMsg, error) {
	if s.done {
		return nil, nil
	}
	m, err := s.it.Next()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("read record: %w", err)
	}
	s.fetched++
	meta, err := m.Metadata()
	if err != nil {
		return nil, fmt.Errorf("read record: %w", err)
	}
	if meta.Sequence.Stream > s.lastSeq || (!s.until.IsZero() && !meta.Timestamp.Before(s.until)) {
		s.done = true
		return nil, nil
	}
	s.remaining--
	if s.remaining == 0 {
		s.done = true
	}
	return &streamMsg{seq: meta.Sequence.Stream, time: meta.Timestamp, subject: m.Subject(), data: m.Data(), recorded: m.Headers().Get(record.HeaderRecorded)}, nil
}

func (s *msgSource) stop() {
	if s.it != nil {
		s.it.Stop()
	}
	if s.unhook != nil {
		s.unhook()
	}
}

// openRecords opens the records of q, bounded by the stream's last
// sequence now.
func openRecords(ctx context.Context, js jetstream.JetStream, q Query) (*msgSource, error) {
	rs, err := js.Stream(ctx, RecordStream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", RecordStream, err)
	}
	info, err := rs.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", RecordStream, err)
	}
	var filters []string
	if q.Agency != "" {
		if err := envelope.CheckNonStandardCode(q.Agency); err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		filters = record.AgencyFilters(q.Agency)
	}
	return openSource(ctx, js, RecordStream, filters, q.Since, q.Until, info.State.LastSeq)
}

// linkCursor walks the chain's links in order alongside the records, and
// checks the chain as it goes: each link's hash, its prev against the link
// before it, its start at a valid checkpoint's head (or the chain's
// start), and the checkpoints it passes.
type linkCursor struct {
	src  *msgSource
	next *Link
	head uint64 // seq of the last link read
	// last is the last link read; anchor the checkpoint the first link
	// read must be the head of (nil: the first link must be the chain's).
	last   *Link
	anchor *SignedCheckpoint
	roots  []*x509.Certificate
	// What the check found: the break before each link (by seq), the
	// breaks and other findings in order, and the last link a valid
	// checkpoint read along covers.
	breaks         map[uint64]error
	broken         uint64
	notes          []string
	coveredThrough uint64
}

// openLinks opens the chain from the checkpoint that anchors the links of
// records stored from since on (from the chain's start when none does). A
// link is written after its record, so every link of a record stored at
// or after since follows that checkpoint. roots verify the checkpoints.
func openLinks(ctx context.Context, js jetstream.JetStream, since time.Time, roots []*x509.Certificate) (*linkCursor, error) {
	as, err := auditStream(ctx, js)
	if err != nil {
		return nil, err
	}
	info, err := as.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", StreamName, err)
	}
	c := &linkCursor{roots: roots, breaks: map[uint64]error{}}
	from := info.State.FirstSeq
	if info.State.LastSeq != 0 {
		a, err := anchorBefore(ctx, js, as, since, info.State.LastSeq)
		if err != nil {
			return nil, err
		}
		if a != nil {
			from = headerUint(a.Header, HeaderHeadSeq)
			if c.anchor, err = VerifyCheckpoint(a.Data, roots); err != nil {
				c.breakAt(0, fmt.Errorf("%w: the checkpoint at %s seq %d that anchors the replay does not verify: %w", ErrCheckpoint, StreamName, a.Sequence, err))
			}
		}
	}
	if c.src, err = openSeqSource(ctx, js, from, info.State.LastSeq); err != nil {
		return nil, err
	}
	return c, nil
}

// breakAt notes a break of the chain before link seq.
func (c *linkCursor) breakAt(seq uint64, err error) {
	c.broken++
	c.notes = append(c.notes, err.Error())
	if _, ok := c.breaks[seq]; !ok && seq != 0 {
		c.breaks[seq] = err
	}
}

// check checks l against the link read before it (or the anchor).
func (c *linkCursor) check(l *Link) {
	switch {
	case !l.Valid():
		c.breakAt(l.Seq, fmt.Errorf("%w: the link of seq %d has hash %s, its content hashes to %s", ErrChainBroken, l.Seq, l.Hash, l.ComputeHash()))
	case c.last == nil && c.anchor != nil && (l.Seq != c.anchor.Seq || l.Hash != c.anchor.Head):
		c.breakAt(l.Seq, fmt.Errorf("%w: the chain read starts at seq %d (hash %s), the anchor checkpoint signed head %s for seq %d",
			ErrChainBroken, l.Seq, l.Hash, c.anchor.Head, c.anchor.Seq))
	case c.last == nil && c.anchor == nil && l.Prev != GenesisHash:
		c.breakAt(l.Seq, fmt.Errorf("%w: the chain read starts at seq %d, which is neither the chain's start nor the head of a valid checkpoint: links removed before it would not show",
			ErrChainBroken, l.Seq))
	case c.last == nil:
	case l.Prev != c.last.Hash:
		c.breakAt(l.Seq, fmt.Errorf("%w: between seq %d and seq %d: prev is %s, the link before hashes to %s (links removed, inserted or changed)",
			ErrChainBroken, c.last.Seq, l.Seq, l.Prev, c.last.Hash))
	case l.Seq <= c.last.Seq:
		c.breakAt(l.Seq, fmt.Errorf("%w: seq %d after seq %d (out of order)", ErrChainBroken, l.Seq, c.last.Seq))
	}
}

// checkpoint checks a checkpoint read after c.last: a valid one whose
// head is c.last covers the chain through it. The chainer stores a
// checkpoint after the link it signs, so one signed for a later link
// than c.last says links were removed between them.
func (c *linkCursor) checkpoint(m *streamMsg) {
	cp, err := VerifyCheckpoint(m.data, c.roots)
	switch {
	case err != nil:
		c.notes = append(c.notes, fmt.Sprintf("the checkpoint at %s seq %d does not verify: %v", StreamName, m.seq, err))
	case c.last != nil && cp.Seq > c.last.Seq:
		c.breakAt(0, fmt.Errorf("%w: the checkpoint at %s seq %d signed head %s for seq %d, but the chain before it ends at seq %d (links removed)",
			ErrChainBroken, StreamName, m.seq, cp.Head, cp.Seq, c.last.Seq))
	case c.last == nil || cp.Seq != c.last.Seq:
		// Not about the links read.
	case cp.Head != c.last.Hash:
		c.breakAt(c.last.Seq, fmt.Errorf("%w: the checkpoint at %s seq %d signed head %s for seq %d, the link of seq %d hashes to %s",
			ErrChainBroken, StreamName, m.seq, cp.Head, cp.Seq, cp.Seq, c.last.Hash))
	default:
		c.coveredThrough = cp.Seq
	}
}

func (c *linkCursor) read(ctx context.Context) (*Link, error) {
	if c.next != nil {
		return c.next, nil
	}
	for {
		m, err := c.src.next(ctx)
		if err != nil || m == nil {
			return nil, err
		}
		if m.subject == CheckpointSubject {
			c.checkpoint(m)
			continue
		}
		var l Link
		if err := json.Unmarshal(m.data, &l); err != nil {
			return nil, fmt.Errorf("decode link at %s seq %d: %w", StreamName, m.seq, err)
		}
		c.check(&l)
		c.next, c.last = &l, &l
		c.head = l.Seq
		return c.next, nil
	}
}

// cover reads on until a valid checkpoint covers link seq or the chain
// read ends.
func (c *linkCursor) cover(ctx context.Context, seq uint64) error {
	for c.coveredThrough < seq {
		c.next = nil
		l, err := c.read(ctx)
		if err != nil || l == nil {
			return err
		}
	}
	return nil
}

// seek returns the link of record seq (nil if none), passing the links
// before it that no record claimed to skipped.
func (c *linkCursor) seek(ctx context.Context, seq uint64, skipped func(*Link) error) (*Link, error) {
	for {
		l, err := c.read(ctx)
		if err != nil || l == nil || l.Seq > seq {
			return nil, err
		}
		c.next = nil
		if l.Seq == seq {
			return l, nil
		}
		if err := skipped(l); err != nil {
			return nil, err
		}
	}
}

// rest passes the remaining links to skipped until end says stop.
func (c *linkCursor) rest(ctx context.Context, end func(*Link) bool, skipped func(*Link) error) error {
	for {
		l, err := c.read(ctx)
		if err != nil || l == nil || end(l) {
			return err
		}
		c.next = nil
		if err := skipped(l); err != nil {
			return err
		}
	}
}

func (c *linkCursor) exhausted() bool { return c.next == nil && c.src.done }

func (c *linkCursor) stop() { c.src.stop() }
