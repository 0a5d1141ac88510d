package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/lease"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/broker/responder"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The publish rate, enforced by the bus for every publisher. NATS has no
// per-user publish rate and an agency publishes its copies straight into
// the record, so a raw client can store copies as fast as it likes; what
// the bus can decide is which of them are deliverable. The rate gate reads
// every document copy of the record in record order and judges it by the
// time the server recorded it (which no publisher chooses) with a token
// bucket per sender: an envelope counts once across its recipients, the
// burst is twice the rate (a well-behaved client allows itself a burst of
// the rate, and the network may bunch its publishes). A copy over the rate
// is refused: the verdict is kept in the AXIS_RATE bucket and the bus
// quarantines the copy with the reason. A recipient's side (the mailbox,
// the HTTP inbox) asks the quarantine service for the verdict of each copy
// before handing it over (Client.admit), so the excess never reaches the
// application; the invalid receipt tells the sender why.

// The verdict bucket (record.RateBucket) holds refused.<record seq> for
// each copy refused, and floor, the highest record sequence judged.
const (
	rateFloorKey = "floor"
	// rateMemory bounds the verdicts kept in memory; older ones are read
	// from the bucket.
	rateMemory = 100_000
	// rateEnvelopeWindow: copies of one envelope recorded within it count
	// once against its sender's rate.
	rateEnvelopeWindow = time.Minute
	// rateMaxIDs bounds the envelopes remembered per sender.
	rateMaxIDs = 4096
	// rateJudgeWait bounds how long a check waits for the gate to reach a
	// copy before answering "not judged yet" (the caller retries).
	rateJudgeWait = 5 * time.Second
)

// rateGate judges the record's document copies against the publish rate.
// One process of a bus judges at a time (lease rateLeaseDuty): with
// several `serve` on a cluster, gates that each judged from their own
// buckets could give one copy two verdicts. The others ask it
// (judgement, RateJudgeSubject).
type rateGate struct {
	c   *broker.Client
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	log *slog.Logger

	campaign context.CancelFunc
	done     chan struct{} // closed when the campaign has ended
	leading  atomic.Bool

	// A term's, set by lead before its goroutines start.
	ctx context.Context // ends when the term's writers stop
	wg  sync.WaitGroup
	// answering bounds the other processes' requests answered at once
	// (each may wait for the gate to reach its copy).
	answering chan struct{}

	mu    sync.Mutex
	last  uint64 // highest record sequence judged
	start uint64 // first sequence this term judges; verdicts below are in kv
	// rejudge is the record's end when this term started: from start to
	// it, an earlier term may have judged copies past the floor it
	// recorded, and a refusal it wrote stands (see onCopy).
	rejudge   uint64
	memFloor  uint64 // verdicts below were evicted from memory
	owners    map[uint64]string
	refused   map[uint64]string
	order     []uint64 // sequences in owners, oldest first
	judged    chan struct{}
	persisted uint64
	// unsaved holds refusals judged but not yet written (verdict and
	// quarantine entry): the floor recorded stays below them, so a crash
	// makes the gate judge them again.
	unsaved map[uint64]string
	work    chan rateRefusal

	// Touched by the consumer's goroutine only.
	senders map[string]*rateSender
}

// rateLeaseDuty names the rate gate's lease (package lease).
const rateLeaseDuty = "rate-gate"

// rateRefusal is a refused copy whose verdict and entry are to be written.
type rateRefusal struct {
	subject, to, from string
	seq               uint64
	reason            string
}

// rateWriters write refusals concurrently, so that a flood does not hold
// up the judging of the copies recorded behind it.
const rateWriters = 4

// rateSender is the token bucket of one sender and the envelopes it sent
// recently.
type rateSender struct {
	tokens float64
	at     time.Time // record time of the last refill
	ids    map[string]*rateEnvelope
	fifo   []string
}

type rateEnvelope struct {
	at      time.Time
	to      map[string]bool
	refused bool
}

// startRateGate creates the verdict bucket and the floor, and campaigns
// for judging: the holder judges the record from where the gate left off.
// On a bus that never ran it, copies recorded before it started count as
// admitted.
func startRateGate(ctx context.Context, c *broker.Client, cfg BusConfig, log *slog.Logger) (*rateGate, error) {
	cfg.defaults()
	kv, err := broker.Retry(ctx, c, func(ctx context.Context) (jetstream.KeyValue, error) {
		return c.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: record.RateBucket,
			Description: "docaxis publish rate: copies the bus refused, and how far it judged the record",
			History:     1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: cfg.Retention})
	})
	if err != nil {
		return nil, fmt.Errorf("set up bucket %s: %w", record.RateBucket, err)
	}
	g := &rateGate{c: c, js: c.JetStream(), kv: kv, log: log, done: make(chan struct{}), answering: make(chan struct{}, 256)}
	// A bucket just made on a new cluster may have no leader for a moment
	// ("no responders"): ask again, as every client call does.
	if _, err := broker.Retry(ctx, c, g.loadFloor); err != nil {
		return nil, err
	}
	el, err := lease.New(ctx, g.js, rateLeaseDuty, lease.Config{Replicas: cfg.Replicas, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("rate gate: %w", err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	g.campaign = cancel
	go func() {
		defer close(g.done)
		el.Run(cctx, g.lead)
	}()
	return g, nil
}

// lead judges the record for as long as ctx lasts (the lease is held),
// from the floor the previous holder recorded.
func (g *rateGate) lead(ctx context.Context) {
	var cons jetstream.Consumer
	for {
		err := g.beginTerm(ctx)
		if err == nil {
			cons, err = g.js.OrderedConsumer(ctx, record.Stream, jetstream.OrderedConsumerConfig{
				FilterSubjects: []string{record.DocPrefix + ">"},
				DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
				OptStartSeq:    g.start,
				// Judging needs the subject, the time and the envelope id,
				// all in the headers; the copy itself is read only when it
				// is refused.
				HeadersOnly: true,
			})
		}
		if err == nil {
			break
		}
		g.log.Warn("rate gate: judging not started yet", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	// The writers outlive the term by the drain below: refusals judged
	// are written even when the lease was lost meanwhile.
	wctx, wcancel := context.WithCancel(context.WithoutCancel(ctx))
	g.ctx = wctx
	for range rateWriters {
		g.wg.Add(1)
		go g.writer()
	}
	g.wg.Add(1)
	go g.persistLoop()
	cc, err := cons.Consume(g.onCopy)
	if err != nil {
		g.log.Error("rate gate: judging not started", "err", err)
		// The lease goes back; another process, or this one, tries again.
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	} else {
		sub, err := responder.Listen(ctx, g.c.Conn(), responder.Config{
			Subject: record.RateJudgeSubject, Handler: record.FromBus(g.answer),
		})
		if err != nil {
			g.log.Error("rate gate: subscribe", "subject", record.RateJudgeSubject, "err", err)
		}
		g.leading.Store(true)
		g.log.Info("rate gate: this process judges the publish rate", "from_seq", g.start)
		<-ctx.Done()
		g.leading.Store(false)
		if sub != nil {
			sub.Stop()
		}
		// A callback in flight ends before the next term resets what
		// onCopy uses (the senders' buckets have no lock of their own).
		cc.Stop()
		<-cc.Closed()
	}
	g.endTerm(wcancel)
}

// beginTerm resets what a term judges from: the floor recorded, and the
// record's end (see rejudge).
func (g *rateGate) beginTerm(ctx context.Context) error {
	floor, err := broker.Retry(ctx, g.c, g.loadFloor)
	if err != nil {
		return err
	}
	end, err := broker.Retry(ctx, g.c, g.recordEnd)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.last, g.start, g.memFloor, g.persisted, g.rejudge = floor, floor+1, floor+1, floor, end
	g.owners, g.refused, g.order = map[uint64]string{}, map[uint64]string{}, nil
	g.unsaved, g.judged = map[uint64]string{}, make(chan struct{})
	g.work, g.senders = make(chan rateRefusal, 4096), map[string]*rateSender{}
	return nil
}

// endTerm writes the refusals in hand (for a few seconds at most: the
// floor recorded stays below an unwritten one, and the next holder would
// judge it again), stops the writers and records how far the term got.
func (g *rateGate) endTerm(stopWriters context.CancelFunc) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		g.mu.Lock()
		n := len(g.unsaved)
		g.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopWriters()
	g.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.persistFloor(ctx)
}

// loadFloor reads how far the record was judged; the first time, the
// record's current end.
func (g *rateGate) loadFloor(ctx context.Context) (uint64, error) {
	e, err := g.kv.Get(ctx, rateFloorKey)
	if err == nil {
		n, perr := strconv.ParseUint(string(e.Value()), 10, 64)
		if perr != nil {
			return 0, fmt.Errorf("rate gate: bad %s in %s: %q", rateFloorKey, record.RateBucket, e.Value())
		}
		return n, nil
	}
	if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("rate gate: read %s: %w", rateFloorKey, err)
	}
	end, err := g.recordEnd(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := g.kv.Create(ctx, rateFloorKey, []byte(strconv.FormatUint(end, 10))); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("rate gate: record %s: %w", rateFloorKey, err)
	}
	return end, nil
}

// recordEnd is the record's last sequence.
func (g *rateGate) recordEnd(ctx context.Context) (uint64, error) {
	st, err := g.js.Stream(ctx, record.Stream)
	if err != nil {
		return 0, fmt.Errorf("rate gate: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("rate gate: %w", err)
	}
	return info.State.LastSeq, nil
}

// stop ends the campaign: the holder stops judging, writes what it
// judged and hands over.
func (g *rateGate) stop() {
	g.campaign()
	<-g.done
}

func (g *rateGate) persistLoop() {
	defer g.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
			g.persistFloor(g.ctx)
		}
	}
}

// persistFloor records the highest sequence judged, never moving it back
// (another bus process may be ahead).
func (g *rateGate) persistFloor(ctx context.Context) {
	g.mu.Lock()
	last := g.last
	for seq := range g.unsaved {
		last = min(last, seq-1)
	}
	g.mu.Unlock()
	if last <= g.persisted {
		return
	}
	for range 3 {
		e, err := g.kv.Get(ctx, rateFloorKey)
		if err != nil {
			g.log.Warn("rate gate: floor not recorded", "err", err)
			return
		}
		if n, _ := strconv.ParseUint(string(e.Value()), 10, 64); n >= last {
			g.persisted = last
			return
		}
		if _, err = g.kv.Update(ctx, rateFloorKey, []byte(strconv.FormatUint(last, 10)), e.Revision()); err == nil {
			g.persisted = last
			return
		}
	}
}

// onCopy judges one copy; it is called in record order.
func (g *rateGate) onCopy(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		return
	}
	seq := meta.Sequence.Stream
	g.mu.Lock()
	seen := seq <= g.last
	g.mu.Unlock()
	if seen {
		return // delivered again after the consumer was recreated
	}
	owner, reason := "", ""
	var r rateRefusal
	if rs, ok := record.ParseSubject(msg.Subject()); ok && rs.Kind == record.KindDoc && record.InMailbox(msg.Subject(), rs.To) {
		owner = envelope.Token(rs.To)
		reason = g.storedRefusal(seq)
		if reason == "" {
			reason = g.judge(rs.To, rs.From, copyID(msg.Headers()), meta.Timestamp)
		}
		r = rateRefusal{subject: msg.Subject(), to: rs.To, from: rs.From, seq: seq, reason: reason}
	}
	g.mu.Lock()
	g.owners[seq] = owner
	if reason != "" {
		g.refused[seq] = reason
		g.unsaved[seq] = reason
	}
	g.order = append(g.order, seq)
	for len(g.order) > rateMemory {
		old := g.order[0]
		g.order = g.order[1:]
		delete(g.owners, old)
		delete(g.refused, old)
		g.memFloor = old + 1
	}
	g.last = seq
	close(g.judged)
	g.judged = make(chan struct{})
	g.mu.Unlock()
	if reason != "" {
		g.log.Warn("rate gate: copy over the publish rate refused", "seq", seq, "from", r.from, "to", r.to)
		select {
		case g.work <- r:
		case <-g.ctx.Done():
		}
	}
}

// storedRefusal is the refusal an earlier process wrote for seq, if it
// judged seq past the floor it recorded (a crash, or a floor not written):
// judging again would start every sender's bucket full and let through
// copies it refused. Writing it again (onCopy) puts back a quarantine
// entry the crash may have lost.
func (g *rateGate) storedRefusal(seq uint64) string {
	if seq > g.rejudge {
		return ""
	}
	ctx, cancel := context.WithTimeout(g.ctx, g.c.Timeout())
	defer cancel()
	j, err := broker.Retry(ctx, g.c, func(ctx context.Context) (rateJudgement, error) { return g.stored(ctx, seq) })
	if err != nil {
		g.log.Warn("rate gate: earlier verdict not read; judging the copy again", "seq", seq, "err", err)
		return ""
	}
	return j.reason
}

// writer writes refusals until the gate stops.
func (g *rateGate) writer() {
	defer g.wg.Done()
	for {
		select {
		case <-g.ctx.Done():
			return
		case r := <-g.work:
			if g.refuse(r) {
				g.mu.Lock()
				delete(g.unsaved, r.seq)
				g.mu.Unlock()
			}
		}
	}
}

// copyID is the envelope id a copy is published with (what the sender's
// client sets, else its dedup id <envelope>.<recipient>). The sender
// chooses it, as it chooses the payload's: it only decides whether copies
// to different recipients count as one envelope, as a real one would.
func copyID(h nats.Header) string {
	if id := h.Get(record.HeaderEnvelope); envelope.IsID(id) {
		return id
	}
	if id, _, _ := strings.Cut(h.Get(jetstream.MsgIDHeader), "."); envelope.IsID(id) {
		return id
	}
	return ""
}

// judge returns why the copy from→to of envelope id recorded at is over
// the rate, or "".
func (g *rateGate) judge(to, from, id string, at time.Time) string {
	l := g.c.Limits()
	rate := l.PublishRate
	if rate <= 0 || g.remote(from) {
		return ""
	}
	burst := max(1, 2*rate)
	s := g.senders[from]
	if s == nil {
		if len(g.senders) >= 4096 {
			g.forgetIdle(at)
		}
		s = &rateSender{tokens: burst, at: at, ids: map[string]*rateEnvelope{}}
		g.senders[from] = s
	}
	if at.After(s.at) {
		s.tokens = min(burst, s.tokens+at.Sub(s.at).Seconds()*rate)
		s.at = at
	}
	s.prune(at)
	e := s.ids[id]
	maxTo := l.MaxRecipients
	if maxTo <= 0 {
		maxTo = envelope.MaxRecipients
	}
	switch {
	case e != nil && e.refused:
		return fmt.Sprintf("%s sent envelope %s faster than %g envelopes per second (burst %g); its copy for %s recorded at %s is refused with it",
			from, id, rate, burst, to, at.UTC().Format(time.RFC3339Nano))
	case e != nil && !e.to[to] && len(e.to) < maxTo:
		e.to[to] = true // another recipient of an envelope already counted
		return ""
	}
	if s.tokens < 1 {
		if id != "" && e == nil {
			s.remember(id, &rateEnvelope{at: at, refused: true})
		}
		return fmt.Sprintf("%s sends faster than %g envelopes per second (burst %g): copy for %s recorded at %s",
			from, rate, burst, to, at.UTC().Format(time.RFC3339Nano))
	}
	s.tokens--
	if id != "" {
		if e == nil {
			e = &rateEnvelope{at: at, to: map[string]bool{}}
			s.remember(id, e)
		}
		e.to[to] = true
	}
	return ""
}

// remote reports whether from is served by another bus of a federation:
// its copies reach this record through the federation, judged at its bus.
func (g *rateGate) remote(from string) bool {
	ab, ok := g.c.AgencyBus(from)
	if !ok || ab == "" {
		return false
	}
	return ab != g.c.Bus()
}

func (g *rateGate) forgetIdle(at time.Time) {
	for code, s := range g.senders {
		if at.Sub(s.at) > rateEnvelopeWindow {
			delete(g.senders, code)
		}
	}
}

func (s *rateSender) remember(id string, e *rateEnvelope) {
	if len(s.ids) >= rateMaxIDs {
		return
	}
	s.ids[id] = e
	s.fifo = append(s.fifo, id)
}

func (s *rateSender) prune(at time.Time) {
	n := 0
	for n < len(s.fifo) {
		e := s.ids[s.fifo[n]]
		if e != nil && at.Sub(e.at) <= rateEnvelopeWindow {
			break
		}
		delete(s.ids, s.fifo[n])
		n++
	}
	s.fifo = s.fifo[n:]
}

// refuse records the verdict and quarantines the copy, retrying until both
// are written (a verdict lost would let the copy through after a restart)
// or the gate stops; it reports whether they were written.
func (g *rateGate) refuse(r rateRefusal) bool {
	for wait := 100 * time.Millisecond; g.ctx.Err() == nil; wait = min(2*wait, 5*time.Second) {
		ctx, cancel := context.WithTimeout(g.ctx, 10*time.Second)
		_, err := g.kv.Put(ctx, rateKey(r.seq), []byte(r.reason))
		if err == nil {
			err = g.quarantine(ctx, r.subject, r.to, r.seq, r.reason)
		}
		cancel()
		if err == nil {
			return true
		}
		g.log.Warn("rate gate: verdict not recorded yet, retrying", "seq", r.seq, "err", err)
		select {
		case <-g.ctx.Done():
		case <-time.After(wait):
		}
	}
	return false
}

// quarantine writes the entry of a refused copy, read from the record.
func (g *rateGate) quarantine(ctx context.Context, subject, to string, seq uint64, reason string) error {
	st, err := g.js.Stream(ctx, record.Stream)
	if err != nil {
		return err
	}
	rec, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // gone from the record: nothing left to deliver or re-drive
	}
	if err != nil {
		return err
	}
	if rec.Subject != subject {
		return fmt.Errorf("record #%d is on %s, judged on %s", seq, rec.Subject, subject)
	}
	_, err = record.WriteMailboxQuarantine(ctx, g.js, to, rec.Subject, rec.Data, seq, 0, broker.ErrRateLimited.Error()+": "+reason)
	return err
}

func rateKey(seq uint64) string { return "refused." + strconv.FormatUint(seq, 10) }

// rateJudgement is the gate's answer about one record sequence.
type rateJudgement struct {
	owner   string // recipient token of the copy ("" for no copy)
	known   bool   // owner is known (recent copies)
	refused bool
	reason  string
}

// judgement answers for seq: here when this process judges, else from the
// process that does, asked again through a handover (nobody answers for a
// moment) within rateJudgeWait.
func (g *rateGate) judgement(ctx context.Context, seq uint64) (rateJudgement, error) {
	ctx, cancel := context.WithTimeout(ctx, rateJudgeWait)
	defer cancel()
	j, err := g.askJudge(ctx, seq)
	if errors.Is(err, lease.ErrHeldHere) {
		return g.judgeHere(ctx, seq)
	}
	if errors.Is(err, lease.ErrNoHolder) {
		return rateJudgement{}, fmt.Errorf("copy #%d: no process of the bus judges the publish rate yet; retry later", seq)
	}
	return j, err
}

// rateAnswer is a judgement on the wire between the bus's processes.
type rateAnswer struct {
	Owner   string `json:"owner,omitempty"`
	Known   bool   `json:"known,omitempty"`
	Refused bool   `json:"refused,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Error   string `json:"error,omitempty"`
}

// askJudge asks the process that judges for seq's verdict.
func (g *rateGate) askJudge(ctx context.Context, seq uint64) (rateJudgement, error) {
	resp, err := lease.Ask(ctx, g.c.Conn(), record.RateJudgeSubject, []byte(strconv.FormatUint(seq, 10)), g.leading.Load)
	if errors.Is(err, lease.ErrHeldHere) {
		return rateJudgement{}, err
	}
	if err != nil {
		return rateJudgement{}, fmt.Errorf("copy #%d: ask the process that judges the publish rate: %w", seq, err)
	}
	var a rateAnswer
	if err := json.Unmarshal(resp.Data, &a); err != nil {
		return rateJudgement{}, fmt.Errorf("copy #%d: answer of the process that judges the publish rate: %w", seq, err)
	}
	if a.Error != "" {
		return rateJudgement{}, fmt.Errorf("copy #%d: %s", seq, a.Error)
	}
	return rateJudgement{owner: a.Owner, known: a.Known, refused: a.Refused, reason: a.Reason}, nil
}

// answer answers another process's judgement request (only the bus's
// processes ask: record.FromBus).
func (g *rateGate) answer(m *nats.Msg) {
	reply := func(a rateAnswer) {
		b, _ := json.Marshal(a)
		_ = m.Respond(b)
	}
	seq, err := strconv.ParseUint(string(m.Data), 10, 64)
	if err != nil || seq == 0 {
		reply(rateAnswer{Error: fmt.Sprintf("want a record sequence, got %q", record.Cut(string(m.Data), 32))})
		return
	}
	select {
	case g.answering <- struct{}{}:
	default:
		reply(rateAnswer{Error: "the process that judges the publish rate is busy; retry later"})
		return
	}
	go func() {
		defer func() { <-g.answering }()
		ctx, cancel := context.WithTimeout(context.Background(), rateJudgeWait)
		defer cancel()
		j, err := g.judgeHere(ctx, seq)
		if err != nil {
			reply(rateAnswer{Error: err.Error()})
			return
		}
		reply(rateAnswer{Owner: j.owner, Known: j.known, Refused: j.refused, Reason: j.reason})
	}()
}

// judgeHere waits until this process has judged seq, then answers.
func (g *rateGate) judgeHere(ctx context.Context, seq uint64) (rateJudgement, error) {
	timer := time.NewTimer(rateJudgeWait)
	defer timer.Stop()
	for {
		g.mu.Lock()
		if seq <= g.last {
			var j rateJudgement
			inMemory := seq >= g.memFloor
			if inMemory {
				j.owner, j.known = g.owners[seq]
				j.reason, j.refused = g.refused[seq]
			} else if reason, ok := g.unsaved[seq]; ok {
				j.reason, j.refused, inMemory = reason, true, true
			}
			g.mu.Unlock()
			if inMemory {
				return j, nil
			}
			return g.stored(ctx, seq)
		}
		wait := g.judged
		g.mu.Unlock()
		select {
		case <-wait:
		case <-timer.C:
			return rateJudgement{}, fmt.Errorf("copy #%d not judged yet against the publish rate; retry later", seq)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return rateJudgement{}, fmt.Errorf("copy #%d not judged yet against the publish rate; retry later", seq)
			}
			return rateJudgement{}, ctx.Err()
		}
	}
}

// judgedTo is the last record sequence this process's gate judged (0 if
// it never judged): every copy up to it is in the record.
func (g *rateGate) judgedTo() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}

// stored reads the verdict of a copy judged before this process started
// or evicted from memory.
func (g *rateGate) stored(ctx context.Context, seq uint64) (rateJudgement, error) {
	e, err := g.kv.Get(ctx, rateKey(seq))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return rateJudgement{}, nil
	}
	if err != nil {
		return rateJudgement{}, fmt.Errorf("read verdict of #%d: %w", seq, err)
	}
	return rateJudgement{refused: true, reason: string(e.Value())}, nil
}
