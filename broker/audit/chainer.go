package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/broker/lease"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/signing/jws"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ChainerConfig configures a Chainer.
type ChainerConfig struct {
	// Key signs checkpoints. Required.
	Key *Key
	// Interval between checkpoints (only when the head moved). Default 1m.
	Interval time.Duration
	// Retention of the audit stream; keep it at least the record's.
	// Default ten years.
	Retention time.Duration
	// Replicas of the audit stream (default 1).
	Replicas int
	// Batch bounds the links published before waiting for their acks
	// (default 1000).
	Batch int
	// LeaseTTL: how long after its holder died another process takes
	// the chain over (default lease.DefaultTTL; see elect.go).
	LeaseTTL time.Duration
	Logger   *slog.Logger
	// OnCheckpoint, if set, is called with every checkpoint stored and its
	// sequence in the audit stream (Timestamper.Checkpointed), and at start
	// with the last one. It must not block.
	OnCheckpoint func(cp *SignedCheckpoint, auditSeq uint64)
}

// Chainer links every record of stream AXIS into the audit chain, in stream
// order, and signs checkpoints. Several may run on one bus (one per
// `serve`): they elect one writer through a JetStream lease (elect.go) and
// the others wait, taking over when it dies. Even two writers could never
// fork the chain: every write expects the audit stream's last sequence
// (the loser reloads and goes on from the new head).
type Chainer struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    ChainerConfig
	log    *slog.Logger

	// dir says which agencies other buses serve.
	dir *busDirectory

	reqs    chan chainRequest
	cancel  context.CancelFunc
	done    chan struct{}
	leading atomic.Bool // this process holds the lease (elect.go)

	mu    sync.Mutex
	st    chainState
	final *SignedCheckpoint
	err   error
}

// chainState is everything the chainer needs to go on; it is rebuilt from
// the audit stream at start and after any failed write, never kept apart.
type chainState struct {
	head       Link   // last link (Seq 0, Hash GenesisHash: none yet)
	headAudit  uint64 // audit-stream seq of head
	last       uint64 // audit stream's last seq
	lastCP     uint64 // audit-stream seq of the last checkpoint
	lastCPSeq  uint64 // record seq that checkpoint covers
	lastCPTime time.Time
	// lastID is the Nats-Msg-Id of the last message this chainer wrote
	// since it loaded the state ("" right after a load).
	lastID string
}

// expect returns the publish conditions that chain a write to the one
// before. The expected last sequence alone is not enough when writes are
// pipelined: if one is refused and another writer's message happens to land
// at its place, the next would be accepted after a gap. Expecting the
// previous message's id as well closes that hole.
func (st *chainState) expect() []jetstream.PublishOpt {
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(StreamName), jetstream.WithExpectLastSequence(st.last)}
	if st.lastID != "" {
		opts = append(opts, jetstream.WithExpectLastMsgID(st.lastID))
	}
	return opts
}

type chainRequest struct {
	through uint64 // link every record up to this AXIS seq first
	reason  string
	reply   chan chainReply
}

type chainReply struct {
	cp  *SignedCheckpoint
	err error
}

// StartChainer creates the audit stream if needed, resumes from its last
// link and starts linking. ctx bounds the start only, which asks again
// through a failover.
func StartChainer(ctx context.Context, js jetstream.JetStream, cfg ChainerConfig) (*Chainer, error) {
	if cfg.Key == nil {
		return nil, errors.New("start audit chainer: no audit key")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Chainer{js: js, cfg: cfg, log: cfg.Logger.With("component", "audit"), reqs: make(chan chainRequest), done: make(chan struct{})}
	// Through a failover: serve starts its chainer as it starts, which on
	// a cluster may be while a node restarts.
	lastCP, err := failover.Do(ctx, failover.Policy{Logger: c.log}, c.load)
	if err != nil {
		return nil, fmt.Errorf("start audit chainer: %w", err)
	}
	c.dir = newBusDirectory(js, recordedCacheTTL)
	if lastCP != nil {
		// The last checkpoint may have been signed while the TSA was out.
		if cp, err := parseCheckpointPayload(lastCP.Data); err == nil {
			cfg.OnCheckpoint(&SignedCheckpoint{Checkpoint: *cp, Raw: lastCP.Data}, lastCP.Sequence)
		}
	}
	lctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	// Log the head before the loop starts changing it.
	c.log.Info("audit chainer started", "head_seq", c.st.head.Seq, "head", c.st.head.Hash, "interval", cfg.Interval)
	if err := c.campaign(ctx, lctx); err != nil {
		cancel()
		return nil, fmt.Errorf("start audit chainer: %w", err)
	}
	return c, nil
}

// load sets the audit stream up and reads the chain's state from it; it
// returns the last checkpoint when OnCheckpoint wants it (nil if none).
// It may be called again: it only reads and creates what is missing.
func (c *Chainer) load(ctx context.Context) (*jetstream.RawStreamMsg, error) {
	s, err := c.js.CreateOrUpdateStream(ctx, StreamConfig(c.cfg.Retention, c.cfg.Replicas))
	if err != nil {
		return nil, fmt.Errorf("set up stream %s: %w", StreamName, err)
	}
	c.stream = s
	if c.st, err = c.loadState(ctx); err != nil {
		return nil, err
	}
	if c.cfg.OnCheckpoint == nil || c.st.lastCP == 0 {
		return nil, nil
	}
	m, err := c.stream.GetMsg(ctx, c.st.lastCP)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint at %s seq %d: %w", StreamName, c.st.lastCP, err)
	}
	return m, nil
}

func (c *Chainer) loadState(ctx context.Context) (chainState, error) {
	st := chainState{head: Link{Hash: GenesisHash}}
	info, err := c.stream.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("read stream %s: %w", StreamName, err)
	}
	st.last = info.State.LastSeq
	m, err := lastMsg(ctx, c.stream, LinkSubject)
	if err != nil {
		return st, err
	}
	if m != nil {
		if st.head, err = decodeLink(m); err != nil {
			return st, err
		}
		st.headAudit = m.Sequence
	}
	m, err = lastMsg(ctx, c.stream, CheckpointSubject)
	if err != nil {
		return st, err
	}
	if m != nil {
		cp, err := parseCheckpointPayload(m.Data)
		if err != nil {
			return st, fmt.Errorf("decode checkpoint at %s seq %d: %w", StreamName, m.Sequence, err)
		}
		st.lastCP, st.lastCPSeq, st.lastCPTime = m.Sequence, cp.Seq, m.Time
	}
	return st, nil
}

// Head returns the last link written.
func (c *Chainer) Head() Link {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.head
}

// Checkpoint links every record stored so far, signs a checkpoint of the
// head (unless the last one already covers it, which is then returned) and
// returns it.
func (c *Chainer) Checkpoint(ctx context.Context) (*SignedCheckpoint, error) {
	if !c.leading.Load() {
		return c.askLeader(ctx) // another process writes the chain
	}
	rs, err := c.js.Stream(ctx, RecordStream)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoint: open stream %s: %w", RecordStream, err)
	}
	info, err := rs.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoint: read stream %s: %w", RecordStream, err)
	}
	req := chainRequest{through: info.State.LastSeq, reason: "request", reply: make(chan chainReply, 1)}
	select {
	case c.reqs <- req:
	case <-c.done:
		return nil, errors.New("audit checkpoint: chainer stopped")
	case <-ctx.Done():
		return nil, fmt.Errorf("audit checkpoint: %w", ctx.Err())
	}
	select {
	case r := <-req.reply:
		return r.cp, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("audit checkpoint: waiting for records up to seq %d to be linked: %w", req.through, ctx.Err())
	}
}

func (c *Chainer) serveRequest(m *nats.Msg) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cp, err := c.Checkpoint(ctx)
		if err != nil {
			_ = m.Respond([]byte(`{"error":` + strconv.Quote(err.Error()) + `}`))
			return
		}
		_ = m.Respond(cp.Raw)
	}()
}

// Stop stops linking after the records in hand, signs a last checkpoint
// and returns it (nil when the head had not moved since the last one).
func (c *Chainer) Stop(ctx context.Context) (*SignedCheckpoint, error) {
	c.cancel()
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("stop audit chainer: %w", ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.final, c.err
}

// run is the chainer's only writer loop: links, checkpoints and requests
// are serialised here, so the expected last sequence is always known.
func (c *Chainer) run(ctx context.Context) {
	ticker := time.NewTicker(c.cfg.Interval)
	defer ticker.Stop()
	var waiting []chainRequest
	for ctx.Err() == nil {
		msgs, stop, err := c.follow(ctx)
		if err != nil {
			c.log.Error("audit chainer: follow the record", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		err = c.loop(ctx, msgs, ticker.C, &waiting)
		stop()
		if err != nil && ctx.Err() == nil {
			c.log.Warn("audit chainer: reloading the chain head", "err", err)
			sleep(ctx, 200*time.Millisecond)
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			st, lerr := c.loadState(rctx)
			cancel()
			if lerr != nil {
				c.log.Error("audit chainer: reload", "err", lerr)
				continue
			}
			c.mu.Lock()
			c.st = st
			c.mu.Unlock()
		}
	}
	if errors.Is(context.Cause(ctx), lease.ErrLost) {
		// Another process writes the chain now: it seals it.
		for _, r := range waiting {
			r.reply <- chainReply{err: errors.New("audit chainer handed over: ask again")}
		}
		return
	}
	// Shutdown: a last checkpoint so that the record up to here is sealed.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cp, err := c.checkpoint(sctx, "shutdown")
	for try := 0; err != nil && try < 3 && sctx.Err() == nil; try++ {
		// Another writer moved the stream: seal its head instead.
		st, lerr := c.loadState(sctx)
		if lerr != nil {
			break
		}
		c.mu.Lock()
		c.st = st
		c.mu.Unlock()
		cp, err = c.checkpoint(sctx, "shutdown")
	}
	c.mu.Lock()
	c.final, c.err = cp, err
	c.mu.Unlock()
	for _, r := range waiting {
		r.reply <- chainReply{err: errors.New("audit chainer stopped")}
	}
	if err != nil {
		c.log.Error("audit chainer: shutdown checkpoint", "err", err)
	}
}

// follow starts an ordered consumer on the record after the head and feeds
// its messages into a channel.
func (c *Chainer) follow(ctx context.Context) (<-chan jetstream.Msg, func(), error) {
	c.mu.Lock()
	from := c.st.head.Seq + 1
	c.mu.Unlock()
	cons, err := c.js.OrderedConsumer(ctx, RecordStream, jetstream.OrderedConsumerConfig{
		NamePrefix:    consumerPrefix("audit_chainer"),
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:   from,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("consumer on %s from seq %d: %w", RecordStream, from, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * c.cfg.Batch))
	if err != nil {
		return nil, nil, fmt.Errorf("consume %s: %w", RecordStream, err)
	}
	ch := make(chan jetstream.Msg, c.cfg.Batch)
	quit := make(chan struct{})
	go func() {
		defer close(ch)
		for {
			m, err := it.Next()
			if err != nil {
				if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					return
				}
				// A fresh consumer from the head is the simplest sound
				// recovery: the loop sees the channel close and reloads.
				c.log.Warn("audit chainer: read record", "err", err)
				return
			}
			select {
			case ch <- m:
			case <-quit:
				return
			}
		}
	}()
	var once sync.Once
	return ch, func() { once.Do(func() { close(quit); it.Stop() }) }, nil
}

func (c *Chainer) loop(ctx context.Context, msgs <-chan jetstream.Msg, tick <-chan time.Time, waiting *[]chainRequest) error {
	batch := make([]jetstream.Msg, 0, c.cfg.Batch)
	// While requests wait, check now and then whether another writer has
	// linked past this one's head; if so, reload rather than wait.
	stale := time.NewTicker(time.Second)
	defer stale.Stop()
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-msgs:
			if !ok {
				return errors.New("record consumer stopped")
			}
			batch = append(batch, m)
		drain:
			for len(batch) < cap(batch) {
				select {
				case m, ok := <-msgs:
					if !ok {
						break drain
					}
					batch = append(batch, m)
				default:
					break drain
				}
			}
			if err := c.link(ctx, batch); err != nil {
				return err
			}
		case <-tick:
			if _, err := c.checkpoint(ctx, "interval"); err != nil {
				return err
			}
		case r := <-c.reqs:
			*waiting = append(*waiting, r)
		case <-stale.C:
			if len(*waiting) > 0 {
				m, err := lastMsg(ctx, c.stream, LinkSubject)
				if err != nil {
					return err
				}
				if m != nil {
					if l, err := decodeLink(m); err == nil && l.Seq > c.Head().Seq {
						return fmt.Errorf("another writer linked through seq %d", l.Seq)
					}
				}
			}
		}
		if err := c.answer(ctx, waiting); err != nil {
			return err
		}
	}
}

// answer replies to the requests whose records are all linked.
func (c *Chainer) answer(ctx context.Context, waiting *[]chainRequest) error {
	if len(*waiting) == 0 {
		return nil
	}
	head := c.Head().Seq
	var keep []chainRequest
	var cp *SignedCheckpoint
	for i, r := range *waiting {
		if r.through > head {
			keep = append(keep, r)
			continue
		}
		if cp == nil {
			var err error
			if cp, err = c.checkpoint(ctx, r.reason); err != nil {
				// Another writer got in first: after the reload, this
				// request and those after it are tried again.
				*waiting = append(keep, (*waiting)[i:]...)
				return err
			}
			if cp == nil {
				if cp, err = c.lastCheckpoint(ctx); err != nil {
					r.reply <- chainReply{err: err}
					cp = nil
					continue
				}
			}
		}
		r.reply <- chainReply{cp: cp}
	}
	*waiting = keep
	return nil
}

// link appends one link per message and waits until all are stored.
func (c *Chainer) link(ctx context.Context, batch []jetstream.Msg) error {
	c.mu.Lock()
	st := c.st
	c.mu.Unlock()
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	links := make([]Link, 0, len(batch))
	for _, m := range batch {
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("record metadata: %w", err)
		}
		seq := meta.Sequence.Stream
		if seq <= st.head.Seq {
			continue // already linked (a consumer reset delivers again)
		}
		if seq != st.head.Seq+1 && st.head.Seq != 0 {
			c.log.Warn("audit chainer: record sequences missing when chained (deleted or expired before linking)",
				"from", st.head.Seq+1, "to", seq-1)
		}
		l := NewLink(st.head.Hash, seq, meta.Timestamp, m.Subject(), m.Data())
		if h := m.Headers().Get(record.HeaderRecorded); h != "" {
			// A copy from another bus: the chain keeps when it counts as
			// recorded, so that verification offline judges it as the
			// mailbox did.
			recorded, err := c.recordedAt(ctx, h, m.Subject(), meta.Timestamp)
			if err != nil {
				return fmt.Errorf("link %d: %w", seq, err)
			}
			l = l.WithRecorded(recorded)
		}
		data, err := json.Marshal(l)
		if err != nil {
			return fmt.Errorf("encode link %d: %w", seq, err)
		}
		msg := &nats.Msg{Subject: LinkSubject, Data: data, Header: nats.Header{}}
		msg.Header.Set(HeaderLastCheckpoint, strconv.FormatUint(st.lastCP, 10))
		id := "link." + strconv.FormatUint(seq, 10)
		f, err := c.js.PublishMsgAsync(msg, append(st.expect(), jetstream.WithMsgID(id))...)
		if err != nil {
			return fmt.Errorf("publish link %d: %w", seq, err)
		}
		st.lastID = id
		futures = append(futures, f)
		links = append(links, l)
		st.head = l
		st.last++
		st.headAudit = st.last
	}
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate || ack.Sequence != c.predicted(i, len(futures), st.last) {
				return fmt.Errorf("link %d stored at %s seq %d, expected %d (another writer?)", links[i].Seq, StreamName, ack.Sequence, c.predicted(i, len(futures), st.last))
			}
		case err := <-f.Err():
			return fmt.Errorf("store link %d: %w", links[i].Seq, err)
		case <-ctx.Done():
			// Shutting down: wait briefly for what is in flight, then let
			// the reload at next start sort it out.
			select {
			case <-f.Ok():
			case <-f.Err():
			case <-time.After(5 * time.Second):
			}
		}
	}
	c.mu.Lock()
	c.st = st
	c.mu.Unlock()
	return nil
}

// recordedAt applies the mailbox's recorded-time rule to a record of
// subject that carries the federation's recorded header h.
func (c *Chainer) recordedAt(ctx context.Context, h, subject string, stored time.Time) (time.Time, error) {
	_, from, _ := subjectFields(subject)
	return c.dir.recordedAt(ctx, h, from, stored)
}

// predicted is the audit seq future i of n should get when the last one
// gets last.
func (c *Chainer) predicted(i, n int, last uint64) uint64 { return last - uint64(n-1-i) }

// checkpoint signs and stores a checkpoint of the head if it moved since
// the last one; it returns nil, nil when there was nothing new.
func (c *Chainer) checkpoint(ctx context.Context, reason string) (*SignedCheckpoint, error) {
	c.mu.Lock()
	st := c.st
	c.mu.Unlock()
	if st.head.Seq == 0 || (st.lastCP != 0 && st.lastCPSeq >= st.head.Seq) {
		return nil, nil
	}
	cp, err := c.cfg.Key.Sign(Checkpoint{Seq: st.head.Seq, Head: st.head.Hash, Time: time.Now(), Reason: reason})
	if err != nil {
		return nil, err
	}
	msg := &nats.Msg{Subject: CheckpointSubject, Data: cp.Raw, Header: nats.Header{}}
	msg.Header.Set(HeaderHeadSeq, strconv.FormatUint(st.headAudit, 10))
	id := "checkpoint." + strconv.FormatUint(st.head.Seq, 10)
	ack, err := c.js.PublishMsg(ctx, msg, append(st.expect(), jetstream.WithMsgID(id))...)
	if err != nil {
		return nil, fmt.Errorf("store checkpoint of seq %d: %w", st.head.Seq, err)
	}
	if ack.Duplicate {
		return nil, fmt.Errorf("store checkpoint of seq %d: already stored by another writer", st.head.Seq)
	}
	st.last, st.lastCP, st.lastCPSeq, st.lastCPTime, st.lastID = ack.Sequence, ack.Sequence, st.head.Seq, cp.Time, id
	c.mu.Lock()
	c.st = st
	c.mu.Unlock()
	c.log.Debug("audit checkpoint", "seq", cp.Seq, "head", cp.Head, "reason", reason)
	if c.cfg.OnCheckpoint != nil {
		c.cfg.OnCheckpoint(cp, ack.Sequence)
	}
	return cp, nil
}

func (c *Chainer) lastCheckpoint(ctx context.Context) (*SignedCheckpoint, error) {
	m, err := lastMsg(ctx, c.stream, CheckpointSubject)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("%w: no checkpoint yet (empty record)", ErrNotCovered)
	}
	return VerifyCheckpoint(m.Data, c.cfg.Key.Chain[1:])
}

func parseCheckpointPayload(raw []byte) (*Checkpoint, error) {
	// The chainer reads back its own checkpoints: the signature was checked
	// when it was made; only the payload matters here.
	pj, err := jws.Payload(raw)
	if err != nil {
		return nil, err
	}
	var cp Checkpoint
	if err := json.Unmarshal(pj, &cp); err != nil {
		return nil, err
	}
	return &cp, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
