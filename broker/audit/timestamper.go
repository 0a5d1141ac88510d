package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/broker/tsa"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Time-stamps: one RFC 3161 token per checkpoint, over the checkpoint's
// exact JWS bytes. A checkpoint fixes every link up to its head, so one
// token covers every record since the last: time-stamping costs nothing
// per document. When the TSA fails, checkpoints keep being signed; the
// first token after it recovers covers all of them.
const (
	// TimestampStream keeps the tokens, apart from the chain so that the
	// chainer's single-writer sequence is untouched.
	TimestampStream  = "AXIS_AUDIT_TSA"
	TimestampSubject = "axis.audit.timestamp"
	// HeaderCheckpointSeq, on a token, is the chain seq its checkpoint
	// covers; HeaderCheckpointAuditSeq the checkpoint's AXIS_AUDIT seq.
	HeaderCheckpointSeq      = "Docaxis-Checkpoint-Seq"
	HeaderCheckpointAuditSeq = "Docaxis-Checkpoint-Audit-Seq"
)

// Stamper gets RFC 3161 tokens (a *tsa.Client).
type Stamper interface {
	Timestamp(ctx context.Context, data []byte) (*tsa.Token, error)
	Status() tsa.Status
}

// TimestampStreamConfig is the token stream's configuration.
func TimestampStreamConfig(retention time.Duration, replicas int) jetstream.StreamConfig {
	c := StreamConfig(retention, replicas)
	c.Name, c.Subjects = TimestampStream, []string{TimestampSubject}
	c.Description = "docaxis audit: RFC 3161 time-stamp tokens of the checkpoints (DER TimeStampResp)"
	return c
}

// TimestamperConfig configures a Timestamper.
type TimestamperConfig struct {
	TSA Stamper
	// MaxUntimestamped is how long a checkpoint may wait for a token
	// before the bus refuses new documents (default 4h; negative: never).
	MaxUntimestamped time.Duration
	// Retry is the first pause after a failure, doubling up to MaxRetry
	// (defaults 1s and 1m).
	Retry, MaxRetry time.Duration
	Retention       time.Duration
	Replicas        int
	Logger          *slog.Logger
	// Now is the clock (time.Now when nil); tests move it.
	Now func() time.Time
}

// Alert kinds.
const (
	AlertTSAFailing   = "tsa-failing"   // a time-stamp attempt failed
	AlertTSARecovered = "tsa-recovered" // a token again after failures
	AlertRefusing     = "refusing"      // past MaxUntimestamped: new documents refused
	AlertAccepting    = "accepting"     // accepting again
)

// Alert is what the Timestamper tells its subscribers (an alerts
// package, the operator's page).
type Alert struct {
	Kind    string    `json:"kind"`
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
	// Since is when the oldest checkpoint still without a token was
	// signed (zero when none waits).
	Since time.Time `json:"since,omitzero"`
}

// TimestampStatus is the state of time-stamping, for /metrics and the
// operator's page.
type TimestampStatus struct {
	TSA tsa.Status `json:"tsa"`
	// LastSeq is the chain seq the last token covers, LastTime its time.
	LastSeq  uint64    `json:"last_seq"`
	LastTime time.Time `json:"last_time,omitzero"`
	// PendingSeq is the newest checkpoint waiting for a token (0: none),
	// PendingSince when the oldest waiting one was signed.
	PendingSeq   uint64        `json:"pending_seq,omitempty"`
	PendingSince time.Time     `json:"pending_since,omitzero"`
	Limit        time.Duration `json:"limit_ns"`
	Refusing     bool          `json:"refusing"`
	Tokens       uint64        `json:"tokens"`
	Failures     uint64        `json:"failures"`
}

type pendingCheckpoint struct {
	cp       *SignedCheckpoint
	auditSeq uint64
}

// Timestamper gets a token for each checkpoint the chainer signs.
type Timestamper struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	dir    jetstream.KeyValue
	cfg    TimestamperConfig
	log    *slog.Logger
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	pending *pendingCheckpoint
	st      TimestampStatus
	subs    map[int]func(Alert)
	nextSub int
	started time.Time
}

// refusalGrace is how long a refusal found at start stands with nothing
// waiting for a token: the chainer hands over its last checkpoint as it
// starts, after the time-stamper.
const refusalGrace = 30 * time.Second

// StartTimestamper creates the token stream if needed, reads where
// time-stamping stopped, and starts. Hand its Checkpointed method to the
// chainer (ChainerConfig.OnCheckpoint).
func StartTimestamper(ctx context.Context, js jetstream.JetStream, cfg TimestamperConfig) (*Timestamper, error) {
	if cfg.TSA == nil {
		return nil, errors.New("start time-stamper: no TSA")
	}
	if cfg.MaxUntimestamped == 0 {
		cfg.MaxUntimestamped = 4 * time.Hour
	}
	if cfg.Retry <= 0 {
		cfg.Retry = time.Second
	}
	if cfg.MaxRetry <= 0 {
		cfg.MaxRetry = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	t := &Timestamper{js: js, cfg: cfg, log: cfg.Logger.With("component", "tsa"),
		wake: make(chan struct{}, 1), done: make(chan struct{}), subs: map[int]func(Alert){}, started: time.Now()}
	t.st.Limit = cfg.MaxUntimestamped
	// Through a failover: serve starts it as it starts, which on a cluster
	// may be while a node restarts.
	if _, err := failover.Do(ctx, failover.Policy{Logger: t.log}, func(ctx context.Context) (struct{}, error) { return struct{}{}, t.load(ctx) }); err != nil {
		return nil, fmt.Errorf("start time-stamper: %w", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go t.run(lctx)
	return t, nil
}

// load sets the time-stamp stream up and reads where the time-stamping
// stands: the last token, and a refusal a previous run left. It may be
// called again: it only reads and creates what is missing.
func (t *Timestamper) load(ctx context.Context) error {
	s, err := t.js.CreateOrUpdateStream(ctx, TimestampStreamConfig(t.cfg.Retention, t.cfg.Replicas))
	if err != nil {
		return fmt.Errorf("set up stream %s: %w", TimestampStream, err)
	}
	dir, err := t.js.KeyValue(ctx, record.DirectoryBucket)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	last, err := lastMsg(ctx, s, TimestampSubject)
	if err != nil {
		return err
	}
	t.stream, t.dir = s, dir
	if last != nil {
		t.st.LastSeq = headerUint(last.Header, HeaderCheckpointSeq)
		t.st.LastTime = last.Time
	}
	// A refusal left by a previous run stands until a token proves the
	// TSA answers again.
	e, err := dir.Get(ctx, broker.TimestampingKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return fmt.Errorf("read the time-stamping state: %w", err)
	default:
		var ts broker.TimestampingState
		if json.Unmarshal(e.Value(), &ts) == nil && ts.Refusing {
			t.st.Refusing, t.st.PendingSince = true, ts.Since
		}
	}
	return nil
}

// Checkpointed queues cp (stored at auditSeq of the audit stream) for a
// token. Only the newest waiting checkpoint is kept: its token covers the
// ones before.
func (t *Timestamper) Checkpointed(cp *SignedCheckpoint, auditSeq uint64) {
	t.mu.Lock()
	if cp.Seq <= t.st.LastSeq {
		t.mu.Unlock()
		return
	}
	if t.pending == nil && t.st.PendingSince.IsZero() {
		t.st.PendingSince = cp.Time
	}
	t.pending = &pendingCheckpoint{cp: cp, auditSeq: auditSeq}
	t.st.PendingSeq = cp.Seq
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// Subscribe calls fn for every alert until the returned cancel is called.
// fn must not block.
func (t *Timestamper) Subscribe(fn func(Alert)) (cancel func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := t.nextSub
	t.nextSub++
	t.subs[id] = fn
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		delete(t.subs, id)
	}
}

// Status returns the state of time-stamping.
func (t *Timestamper) Status() TimestampStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.st
	s.TSA = t.cfg.TSA.Status()
	return s
}

// Stop stops after the attempt in hand.
func (t *Timestamper) Stop() {
	t.cancel()
	<-t.done
}

func (t *Timestamper) alert(a Alert) {
	a.Time = t.cfg.Now()
	t.mu.Lock()
	subs := make([]func(Alert), 0, len(t.subs))
	for _, fn := range t.subs {
		subs = append(subs, fn)
	}
	t.mu.Unlock()
	level := slog.LevelWarn
	if a.Kind == AlertTSARecovered || a.Kind == AlertAccepting {
		level = slog.LevelInfo
	}
	t.log.Log(context.Background(), level, "time-stamping: "+a.Message, "alert", a.Kind)
	for _, fn := range subs {
		fn(a)
	}
}

func (t *Timestamper) run(ctx context.Context) {
	defer close(t.done)
	backoff := time.Duration(0)
	var retryAt time.Time // zero: no retry scheduled
	failing := false
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for {
		var wait <-chan time.Time
		if !retryAt.IsZero() {
			wait = time.After(time.Until(retryAt))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
			if !retryAt.IsZero() {
				continue // a retry is already scheduled
			}
		case <-wait:
			retryAt = time.Time{}
		case <-check.C:
			t.enforce(ctx)
			continue
		}
		t.mu.Lock()
		p := t.pending
		t.mu.Unlock()
		if p == nil {
			backoff = 0
			continue
		}
		err := t.stamp(ctx, p)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			t.mu.Lock()
			t.st.Failures++
			since := t.st.PendingSince
			t.mu.Unlock()
			backoff = min(max(2*backoff, t.cfg.Retry), t.cfg.MaxRetry)
			retryAt = time.Now().Add(backoff)
			failing = true
			t.alert(Alert{Kind: AlertTSAFailing, Since: since,
				Message: fmt.Sprintf("checkpoint of seq %d not time-stamped (retry in %s): %v", p.cp.Seq, backoff, err)})
			t.enforce(ctx)
			continue
		}
		backoff = 0
		if failing {
			failing = false
			t.alert(Alert{Kind: AlertTSARecovered, Message: fmt.Sprintf("time-stamped again through seq %d", p.cp.Seq)})
		}
		t.enforce(ctx)
	}
}

// stamp gets and stores a token for p; on success the pending checkpoint
// is cleared unless a newer one came meanwhile.
func (t *Timestamper) stamp(ctx context.Context, p *pendingCheckpoint) error {
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tok, err := t.cfg.TSA.Timestamp(actx, p.cp.Raw)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: TimestampSubject, Data: tok.Raw, Header: nats.Header{}}
	msg.Header.Set(HeaderCheckpointSeq, strconv.FormatUint(p.cp.Seq, 10))
	msg.Header.Set(HeaderCheckpointAuditSeq, strconv.FormatUint(p.auditSeq, 10))
	if _, err := t.js.PublishMsg(actx, msg, jetstream.WithExpectStream(TimestampStream), jetstream.WithMsgID("ts."+strconv.FormatUint(p.cp.Seq, 10))); err != nil {
		return fmt.Errorf("store token of checkpoint %d: %w", p.cp.Seq, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.st.LastSeq, t.st.LastTime, t.st.Tokens = p.cp.Seq, tok.Time, t.st.Tokens+1
	if t.pending == p {
		t.pending, t.st.PendingSeq, t.st.PendingSince = nil, 0, time.Time{}
	} else {
		// A newer checkpoint came while this one was stamped: it waits
		// since it was signed.
		t.st.PendingSince = t.pending.cp.Time
	}
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return nil
}

// enforce publishes the refusal when the oldest waiting checkpoint is
// older than the limit, and lifts it when nothing waits that long.
func (t *Timestamper) enforce(ctx context.Context) {
	t.mu.Lock()
	if t.pending == nil && time.Since(t.started) > refusalGrace {
		// Nothing waits: a refusal left by a previous run ends once the
		// chainer has had time to hand over its last checkpoint.
		t.st.PendingSince = time.Time{}
	}
	since, refusing, limit := t.st.PendingSince, t.st.Refusing, t.cfg.MaxUntimestamped
	lastErr := t.cfg.TSA.Status().LastError
	t.mu.Unlock()
	over := limit > 0 && !since.IsZero() && t.cfg.Now().Sub(since) > limit
	if over == refusing {
		return
	}
	st := broker.TimestampingState{Refusing: over, Since: since, Limit: limit.String(), Reason: lastErr}
	b, _ := json.Marshal(st)
	if _, err := t.dir.Put(ctx, broker.TimestampingKey, b); err != nil {
		t.log.Error("time-stamping: publish the refusal state", "err", err)
		return
	}
	t.mu.Lock()
	t.st.Refusing = over
	t.mu.Unlock()
	if over {
		t.alert(Alert{Kind: AlertRefusing, Since: since, Message: fmt.Sprintf("nothing time-stamped since %s, more than the %s allowed: new documents are refused until a TSA answers", since.UTC().Format(time.RFC3339), limit)})
	} else {
		t.alert(Alert{Kind: AlertAccepting, Message: "time-stamping caught up: new documents are accepted again"})
	}
}
