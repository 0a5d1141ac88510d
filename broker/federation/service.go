package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/broker/responder"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures a bus's federation service.
type Config struct {
	// BusID is this bus's id; it is also its JetStream domain.
	BusID string
	// National is the national bus's id; BusID on the national bus itself.
	National string
	// Client is the bus service's own client (bus credentials).
	Client *broker.Client
	// CA is this bus's CA: it anchors the bus's agencies and issues the bus
	// certificate trace entries are signed with.
	CA *signing.CA
	// Identity signs trace entries; loaded from (or issued into) Dir when nil.
	Identity *BusIdentity
	// Dir holds the bus identity (bus.key, bus.crt).
	Dir string
	// Server is the embedded server, for the state of the links (nil with
	// an external cluster: links then show as "unknown"). The national bus
	// needs it: its members' link accounts are resolved by its authority.
	Server *server.Server
	// Tracker, when set, feeds the statistics.
	Tracker broker.TrackingSource
	// Store receives attachments coming in from other buses (default: the
	// client's store).
	Store storage.Store
	// Replicas of the federation streams (default 1).
	Replicas int
	// Retention of the federation streams: how long a message may wait for
	// a link, and how long copies in transit stay for inspection (default
	// 90 days; the record itself is AXIS).
	Retention time.Duration
	// StreamMaxBytes and StreamMaxMsgs bound each federation stream of the
	// bus besides its age (defaults 8 GiB and 2,000,000): the streams that
	// keep copies in transit for inspection drop their oldest beyond them.
	StreamMaxBytes int64
	StreamMaxMsgs  int64
	// LinkQuota, on the national bus, is what one member's link account may
	// hold there: the queue of what waits for the member, and its copy of
	// the directory (default 2 GiB). What waits for a member beyond it
	// stays in the national's relay until the member takes some.
	LinkQuota int64
	// RelayQuota, on the national bus, bounds what one member's traffic may
	// occupy in the relay before it moves on to its destinations' queues
	// (default 1 GiB): beyond it the national takes no more envelopes from
	// that member until some moves on (the parts of those it took follow
	// them), and the rest waits on the member's own bus. One member cannot
	// fill the relay that all share.
	RelayQuota int64
	// AttachmentWait bounds how long a copy waits for its attachment's parts
	// (default 2 minutes): then it is quarantined with the reason instead
	// of holding its place, and a file part that no relayed envelope lists
	// is dropped.
	AttachmentWait time.Duration
	// MaxLinkOutage bounds how much earlier than the next bus on its way a
	// copy's origin bus may say it recorded it (default 72 hours): the
	// signature is judged at that time, so a bus can date its agencies'
	// envelopes back by at most this much (see recordedTime).
	MaxLinkOutage time.Duration
	Logger        *slog.Logger
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Retention == 0 {
		c.Retention = 90 * 24 * time.Hour
	}
	if c.StreamMaxBytes == 0 {
		c.StreamMaxBytes = 8 << 30
	}
	if c.StreamMaxMsgs == 0 {
		c.StreamMaxMsgs = 2_000_000
	}
	if c.LinkQuota == 0 {
		c.LinkQuota = auth.DefaultLinkLimits().DiskStorage
	}
	if c.RelayQuota == 0 {
		c.RelayQuota = 1 << 30
	}
	if c.AttachmentWait == 0 {
		c.AttachmentWait = 2 * time.Minute
	}
	if c.MaxLinkOutage == 0 {
		c.MaxLinkOutage = 72 * time.Hour
	}
}

// Service moves envelopes and statuses between this bus and the others
// (see the package documentation). It runs inside `docaxis serve`.
type Service struct {
	cfg     Config
	bus     string
	c       *broker.Client
	js      jetstream.JetStream
	nc      *nats.Conn
	dir     jetstream.KeyValue
	store   storage.Store
	id      *BusIdentity
	book    *trustBook
	log     *slog.Logger
	stats   *stats
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	statSub *responder.Responder
	// retrySub answers operators' retries of quarantined messages.
	retrySub *responder.Responder

	mu      sync.Mutex
	loops   map[string]*loopState // consumer loops running, by name
	local   map[string]bool       // agency codes this bus serves (for delete announcements)
	members map[string]bool

	// National bus: its members' link accounts (auth) and the links set up
	// in them (links.go), and the directory entries passed on to them.
	links   *auth.Links
	linkMu  sync.Mutex
	mlinks  map[string]*memberLink
	dirSnap map[string]jetstream.KeyValueEntry
	// inflight remembers the attachments of relayed envelopes (national).
	inflight jetstream.KeyValue
	// inStr is the inbound stream (inboundStream).
	inStr jetstream.Stream
	// gates of the relay, by origin (national).
	gates map[string]*relayGate
	// waiting counts, by origin, the bytes the relay holds that have not
	// moved on to their destination yet (national; from zero at start).
	waiting map[string]int64
}

// National reports whether this is the national bus.
func (s *Service) National() bool { return s.cfg.National == s.bus }

// Start sets up the federation streams of the bus, starts following the
// directory and starts moving messages. Call after bus.StartService.
func Start(ctx context.Context, cfg Config) (*Service, error) {
	if err := CheckBusID(cfg.BusID); err != nil {
		return nil, err
	}
	if err := CheckBusID(cfg.National); err != nil {
		return nil, fmt.Errorf("national bus: %w", err)
	}
	if cfg.Client == nil || cfg.CA == nil {
		return nil, errors.New("start federation: a client and the bus CA are required")
	}
	cfg.defaults()
	if cfg.Identity == nil {
		id, err := LoadBusIdentity(cfg.Dir, cfg.BusID, cfg.CA)
		if err != nil {
			return nil, err
		}
		cfg.Identity = id
	}
	if cfg.Store == nil {
		cfg.Store = cfg.Client.Store()
	}
	s := &Service{cfg: cfg, bus: cfg.BusID, c: cfg.Client, js: cfg.Client.JetStream(), nc: cfg.Client.Conn(), store: cfg.Store,
		id: cfg.Identity, book: newTrustBook(), log: cfg.Logger.With("bus", cfg.BusID), loops: map[string]*loopState{},
		local: map[string]bool{}, members: map[string]bool{}, mlinks: map[string]*memberLink{}, dirSnap: map[string]jetstream.KeyValueEntry{}, gates: map[string]*relayGate{}, waiting: map[string]int64{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.book.setBus(s.bus, cfg.CA.Cert)
	var err error
	if s.dir, err = s.js.KeyValue(ctx, record.DirectoryBucket); err != nil {
		return nil, fmt.Errorf("start federation: %w", err)
	}
	if s.National() {
		// Members' leaf connections land in link accounts of their own,
		// which only this bus's authority makes (auth.Links).
		if s.links, err = auth.LinksOf(cfg.Server); err != nil {
			return nil, fmt.Errorf("start federation as the national bus: %w", err)
		}
		s.links.SetLimits(s.linkLimits())
		if err := s.links.Sync(); err != nil {
			s.log.Warn("federation: link accounts", "err", err)
		}
	}
	s.stats = newStats(s)
	if err := s.setup(ctx); err != nil {
		s.cancel()
		return nil, err
	}
	if cfg.Tracker != nil {
		cfg.Tracker.Observe(s.stats.observe)
	}
	if err := s.followDirectory(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.startLoops(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.watchBuses(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	if s.statSub, err = responder.Listen(ctx, s.nc, responder.Config{
		Subject: StatusSubject, Handler: record.FromBus(s.answerStatus),
	}); err != nil {
		s.Stop()
		return nil, fmt.Errorf("start federation: %w", err)
	}
	if err := s.startRetry(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.stats.seed(s.ctx)
	}()
	s.log.Info("federation service running", "national", cfg.National, "role", s.role())
	return s, nil
}

func (s *Service) role() string {
	if s.National() {
		return "national"
	}
	return "member"
}

// Stop stops moving messages after the ones in hand.
func (s *Service) Stop() {
	if s.statSub != nil {
		// A status request after Stop hears "no responders" at once
		// (TestAdmitMember asks right after stopping).
		s.statSub.Stop()
	}
	if s.retrySub != nil {
		s.retrySub.Stop()
	}
	s.cancel()
	s.wg.Wait()
	s.linkMu.Lock()
	for id, l := range s.mlinks {
		l.nc.Close()
		delete(s.mlinks, id)
	}
	s.linkMu.Unlock()
}

// streamConfig is a federation stream that keeps what crossed for
// inspection, within the bus's age, size and count limits (the oldest
// dropped first).
func (s *Service) streamConfig(name string, subjects []string, sources []*jetstream.StreamSource) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: "docaxis federation",
		Subjects:    subjects,
		Sources:     sources,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.cfg.Retention,
		MaxBytes:    s.cfg.StreamMaxBytes,
		MaxMsgs:     s.cfg.StreamMaxMsgs,
		MaxMsgSize:  maxMsgSize,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		Duplicates:  min(24*time.Hour, s.cfg.Retention),
		Discard:     jetstream.DiscardOld,
	}
}

// maxMsgSize of a federation message: an envelope (at most 1 MiB, as the
// record takes it) or a file part, with the trace headers.
const maxMsgSize = 1<<20 + 256<<10

func (s *Service) linkLimits() auth.LinkLimits {
	l := auth.DefaultLinkLimits()
	l.DiskStorage = s.cfg.LinkQuota
	return l
}

// linkConsumer is a durable consumer another bus's stream sources from:
// the server acknowledges by flow control, so the consumer's pending count
// is exactly what has not crossed the link yet, even while it is down.
func linkConsumer(name, deliver string, filters ...string) jetstream.ConsumerConfig {
	cc := jetstream.ConsumerConfig{
		Durable:        name,
		Description:    "docaxis federation link",
		DeliverSubject: deliver,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckFlowControlPolicy,
		FlowControl:    true,
		IdleHeartbeat:  time.Second,
		MaxAckPending:  256,
	}
	if len(filters) == 1 {
		cc.FilterSubject = filters[0]
	} else {
		cc.FilterSubjects = filters
	}
	return cc
}

// setup creates the streams of the bus's role. It is idempotent.
func (s *Service) setup(ctx context.Context) error {
	streams := []jetstream.StreamConfig{s.streamConfig(OutStream, []string{outPrefix + ">"}, nil)}
	if s.National() {
		streams = append(streams, s.streamConfig(RelayStream, []string{relayPrefix + ">"}, nil))
	} else {
		n := s.cfg.National
		streams = append(streams,
			s.streamConfig(InStream, nil, []*jetstream.StreamSource{{Name: RelayStream, Domain: n,
				Consumer: &jetstream.StreamConsumerSource{Name: downPrefix + s.bus, DeliverSubject: linkSubject(s.bus, "down")}}}),
			s.streamConfig(DirStream, nil, []*jetstream.StreamSource{{Name: kvDirectoryStream, Domain: n,
				Consumer: &jetstream.StreamConsumerSource{Name: dirDownPrefix + s.bus, DeliverSubject: linkSubject(s.bus, "dir")}}}))
	}
	for _, sc := range streams {
		str, err := s.js.CreateOrUpdateStream(ctx, sc)
		if err != nil {
			return fmt.Errorf("set up federation stream %s: %w", sc.Name, err)
		}
		if sc.Name == s.inboundStream() {
			s.inStr = str
		}
	}
	if s.National() {
		var err error
		if s.inflight, err = s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: inflightBucket,
			Description: "docaxis federation: attachments of relayed envelopes", History: 1, TTL: inflightTTL,
			MaxBytes: 256 << 20, Storage: jetstream.FileStorage, Replicas: s.cfg.Replicas}); err != nil {
			return fmt.Errorf("set up bucket %s: %w", inflightBucket, err)
		}
	} else if err := s.setupUplink(ctx); err != nil {
		return err
	}
	if _, err := s.dir.Put(ctx, broker.BusKey, []byte(s.bus)); err != nil {
		return fmt.Errorf("record the bus id in the directory: %w", err)
	}
	if s.National() {
		if err := RegisterBus(ctx, s.c, s.bus, s.cfg.CA.Cert, true); err != nil {
			return err
		}
	}
	return nil
}

// setupUplink creates, on a member, the consumer through which the
// national takes this bus's outbound stream: the national pulls, at its
// own pace and in bounded batches, so a member cannot push more at it than
// it takes. An earlier version's push consumer, which the national
// sourced, hands over where it stopped.
func (s *Service) setupUplink(ctx context.Context) error {
	cc := jetstream.ConsumerConfig{
		Durable:       uplinkConsumer,
		Description:   "docaxis federation: the national bus takes from here",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// The national acknowledges a message once it relayed it and says
		// when to hand one out again; it also decides when to give up.
		AckWait:            loopAckWait,
		MaxDeliver:         -1,
		MaxAckPending:      256,
		MaxRequestMaxBytes: pullBytes,
	}
	if cur, err := s.js.Consumer(ctx, OutStream, uplinkConsumer); err == nil {
		info := cur.CachedInfo()
		cc.DeliverPolicy, cc.OptStartSeq = info.Config.DeliverPolicy, info.Config.OptStartSeq
	} else if old, err := s.js.Consumer(ctx, OutStream, legacyUplinkConsumer); err == nil {
		if floor := old.CachedInfo().AckFloor.Stream; floor > 0 {
			cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, floor+1
		}
	}
	if _, err := s.js.CreateOrUpdateConsumer(ctx, OutStream, cc); err != nil {
		return fmt.Errorf("set up the uplink consumer: %w", err)
	}
	if err := s.js.DeleteConsumer(ctx, OutStream, legacyUplinkConsumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.log.Warn("federation: remove the earlier uplink consumer", "err", err)
	}
	return nil
}

func (s *Service) startLoops(ctx context.Context) error {
	fwd := jetstream.ConsumerConfig{Durable: forwardConsumer, FilterSubjects: record.RecordFilters()}
	if err := s.loop(ctx, s.js, record.Stream, fwd, s.forward); err != nil {
		return err
	}
	if s.National() {
		if err := s.loop(ctx, s.js, OutStream, jetstream.ConsumerConfig{Durable: relayConsumer}, s.relay(s.bus)); err != nil {
			return err
		}
	} else if err := s.loop(ctx, s.js, DirStream, jetstream.ConsumerConfig{Durable: dirsyncConsumer}, s.dirsync); err != nil {
		return err
	}
	// What was relayed before relay subjects named their origin.
	legacy := jetstream.ConsumerConfig{Durable: ingestConsumer, FilterSubject: relayFilter(s.bus, "")}
	if err := s.loop(ctx, s.js, s.inboundStream(), legacy, s.ingest); err != nil {
		return err
	}
	for _, bus := range s.book.known() {
		if err := s.ensureIngest(ctx, bus); err != nil {
			return err
		}
	}
	return nil
}

// ensureIngest takes in what origin sends this bus through a consumer of
// its own: a bus whose messages wait (for attachments that do not come,
// say) holds up no other bus's.
func (s *Service) ensureIngest(ctx context.Context, origin string) error {
	if origin == s.bus || CheckBusID(origin) != nil {
		return nil
	}
	cc := jetstream.ConsumerConfig{Durable: ingestPrefix + origin, FilterSubject: relayFilter(s.bus, origin)}
	var done func(jetstream.Msg)
	if s.National() {
		done = s.movedOn
	}
	return s.loopDone(ctx, s.js, s.inboundStream(), cc, s.ingest, done)
}

// inboundStream holds the messages addressed to this bus (and their
// attachment parts).
func (s *Service) inboundStream() string {
	if s.National() {
		return RelayStream
	}
	return InStream
}

type handler func(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) error

// maxAttempts bounds the retries of a message that keeps failing for a
// reason that might pass (an agency or bus not in the directory yet, a
// store down): then it is quarantined with the reason.
const maxAttempts = 40

// retryDelays space those retries.
var retryDelays = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute}

// retryDelay is the wait after the attempt-th delivery. The count comes
// from the message's ack subject, which a member writes for what the
// national pulls from it: any value must give a delay.
func retryDelay(attempt uint64) time.Duration {
	return retryDelays[min(max(attempt, 1), uint64(len(retryDelays)))-1]
}

// backpressureDelay caps the wait before a message that found no room is
// looked at again.
const backpressureDelay = 2 * time.Second

// loopAckWait is how long a message handed to a loop may go without an
// acknowledgement or a progress ack before it is handed out again.
const loopAckWait = 30 * time.Second

// pullBytes bounds what a loop holds fetched and not yet handled: a flood
// of large messages cannot grow the bus's memory beyond it per loop.
const pullBytes = 8 << 20

// loopState is a running consumer loop.
type loopState struct {
	js              jetstream.JetStream
	stream, durable string
	bus             string // set for another bus's consumer, taken over the link
	cancel          context.CancelFunc
	// done, when set, is told of each message the loop is finished with
	// (acknowledged or terminated).
	done func(jetstream.Msg)
}

// loop creates (or updates) a durable pull consumer on stream and handles
// its messages one at a time, in stream order, until Stop: a message is
// acknowledged only once what it caused is stored.
func (s *Service) loop(ctx context.Context, js jetstream.JetStream, stream string, cc jetstream.ConsumerConfig, h handler) error {
	return s.loopDone(ctx, js, stream, cc, h, nil)
}

// loopDone is loop telling done of each message it is finished with.
func (s *Service) loopDone(ctx context.Context, js jetstream.JetStream, stream string, cc jetstream.ConsumerConfig, h handler, done func(jetstream.Msg)) error {
	cc.Description = "docaxis federation"
	cc.AckPolicy = jetstream.AckExplicitPolicy
	// A message lost on its way to the loop comes back soon; one being
	// handled (a large attachment) is kept by progress acks.
	cc.AckWait = loopAckWait
	cc.MaxDeliver = -1
	cc.MaxAckPending = 256
	return s.run(ctx, true, js, stream, cc.Durable, "", func(ctx context.Context) (jetstream.Consumer, error) {
		if cur, err := js.Consumer(ctx, stream, cc.Durable); err == nil {
			// Deliver policy and start cannot change: keep the ones it has.
			info := cur.CachedInfo()
			cc.DeliverPolicy, cc.OptStartSeq = info.Config.DeliverPolicy, info.Config.OptStartSeq
		}
		return js.CreateOrUpdateConsumer(ctx, stream, cc)
	}, h, done)
}

// attach handles the messages of a consumer bus owns (a member's outbound
// consumer, on the national), binding to it again whenever the link comes
// back.
func (s *Service) attach(bus string, js jetstream.JetStream, stream, durable string, h handler) error {
	return s.run(s.ctx, false, js, stream, durable, bus, func(ctx context.Context) (jetstream.Consumer, error) {
		return js.Consumer(ctx, stream, durable)
	}, h, nil)
}

// loopName names a loop in logs, in quarantine message ids and in the
// status's queues: stream/consumer, and the bus for another bus's.
func loopName(stream, durable, bus string) string {
	if bus != "" {
		return bus + ":" + stream + "/" + durable
	}
	return stream + "/" + durable
}

// run starts a loop over the consumer open returns (one of bus's when bus
// is set). With openNow, open is called once with ctx before run returns
// (and its error returned); without, the loop calls it until it succeeds.
func (s *Service) run(ctx context.Context, openNow bool, js jetstream.JetStream, stream, durable, bus string,
	open func(context.Context) (jetstream.Consumer, error), h handler, done func(jetstream.Msg)) error {
	name := loopName(stream, durable, bus)
	remote := bus != ""
	s.mu.Lock()
	if s.loops[name] != nil {
		s.mu.Unlock()
		return nil
	}
	lctx, cancel := context.WithCancel(s.ctx)
	st := &loopState{js: js, stream: stream, durable: durable, bus: bus, cancel: cancel, done: done}
	s.loops[name] = st
	s.mu.Unlock()
	var cons jetstream.Consumer
	if openNow {
		var err error
		if cons, err = open(ctx); err != nil {
			s.mu.Lock()
			delete(s.loops, name)
			s.mu.Unlock()
			cancel()
			return fmt.Errorf("federation consumer %s: %w", name, err)
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		for lctx.Err() == nil {
			if cons == nil {
				octx, ocancel := context.WithTimeout(lctx, 10*time.Second)
				c, err := open(octx)
				ocancel()
				if err != nil {
					s.log.Debug("federation: consumer not available yet", "consumer", name, "err", err)
					sleep(lctx, time.Second)
					continue
				}
				cons = c
			}
			opts := []jetstream.PullMessagesOpt{jetstream.PullMaxMessagesWithBytesLimit(64, pullBytes)}
			if remote {
				// A pull lost with a link that went down is asked again
				// soon, not after the default half minute.
				opts = append(opts, jetstream.PullExpiry(5*time.Second), jetstream.PullHeartbeat(2*time.Second))
			}
			it, err := cons.Messages(opts...)
			if err != nil {
				s.log.Warn("federation: consume", "consumer", name, "err", err)
				cons = nil
				sleep(lctx, time.Second)
				continue
			}
			stop := context.AfterFunc(lctx, it.Stop)
			for {
				msg, err := it.Next()
				if err != nil {
					if lctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						s.log.Warn("federation: consume", "consumer", name, "err", err)
					}
					break
				}
				s.handle(name, st, msg, h)
			}
			stop()
			it.Stop()
			if remote {
				cons = nil // the link may have gone: bind again
			}
			if lctx.Err() == nil {
				sleep(lctx, time.Second)
			}
		}
	}()
	return nil
}

// stopLoops stops the loops match selects.
func (s *Service) stopLoops(match func(name string, st *loopState) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, st := range s.loops {
		if match(name, st) {
			st.cancel()
			delete(s.loops, name)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// retryAfter asks for a message to be handed out again after d, without
// counting towards maxAttempts: the handler bounds the wait itself.
type retryAfter struct {
	d   time.Duration
	err error
}

func (r *retryAfter) Error() string { return r.err.Error() }
func (r *retryAfter) Unwrap() error { return r.err }

// errBackpressure: the message cannot be stored where it goes yet (a
// link's queue is full); it is handed out again later, never given up.
var errBackpressure = errors.New("no room yet")

// errDrop: the message is not one this bus takes (a file part that no
// relayed envelope lists): it is terminated, counted and logged, not kept.
var errDrop = errors.New("dropped")

func (s *Service) handle(name string, st *loopState, msg jetstream.Msg, h handler) {
	meta, err := msg.Metadata()
	switch {
	case err != nil:
	case meta.Stream != st.stream || meta.Consumer != st.durable || (meta.Domain != "" && st.bus != "" && meta.Domain != st.bus):
		err = fmt.Errorf("delivered for consumer %s of stream %s", meta.Consumer, meta.Stream)
	case meta.NumDelivered == 0 || meta.Sequence.Stream == 0 || meta.Sequence.Consumer == 0:
		// What a server never sends: the first delivery is number 1,
		// and sequences start at 1.
		err = fmt.Errorf("delivery %d of stream sequence %d, consumer sequence %d", meta.NumDelivered, meta.Sequence.Stream, meta.Sequence.Consumer)
	}
	if err != nil {
		// Not a delivery of this loop's consumer (a member may answer a
		// pull with made-up messages, its ack subject included): nothing
		// to acknowledge it with, as the acknowledgement would go where it
		// says.
		s.log.Warn("federation: message ignored", "consumer", name, "subject", msg.Subject(), "err", err)
		return
	}
	// A message in hand is finished even when Stop comes meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 5*time.Minute)
	defer cancel()
	working := make(chan struct{})
	go func() {
		t := time.NewTicker(loopAckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-working:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	err = h(ctx, msg, meta)
	close(working)
	var ra *retryAfter
	switch {
	case err == nil:
		if err := msg.DoubleAck(ctx); err != nil {
			s.log.Warn("federation: ack", "consumer", name, "seq", meta.Sequence.Stream, "err", err)
			return
		}
		if st.done != nil {
			st.done(msg)
		}
	case errors.Is(err, errDrop):
		s.stats.dropped(name)
		s.log.Warn("federation: message dropped", "consumer", name, "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		if st.done != nil {
			st.done(msg)
		}
	case errors.As(err, &ra):
		_ = msg.NakWithDelay(ra.d)
	case errors.Is(err, errBackpressure):
		// Looked at again soon: room comes as the other side takes.
		s.log.Debug("federation: waiting for room", "consumer", name, "subject", msg.Subject(), "err", err)
		_ = msg.NakWithDelay(min(retryDelay(meta.NumDelivered), backpressureDelay))
	case errors.Is(err, ErrRefused) || meta.NumDelivered >= maxAttempts:
		s.log.Warn("federation: message refused, quarantined", "consumer", name, "subject", msg.Subject(), "seq", meta.Sequence.Stream, "err", err)
		if qerr := s.quarantine(ctx, name, st, msg, meta, err); qerr != nil {
			s.log.Warn("federation: quarantine failed, retrying later", "consumer", name, "err", qerr)
			_ = msg.NakWithDelay(10 * time.Second)
			return
		}
		s.stats.refused()
		_ = msg.Term()
		if st.done != nil {
			st.done(msg)
		}
	default:
		s.log.Info("federation: retry later", "consumer", name, "subject", msg.Subject(), "seq", meta.Sequence.Stream, "attempt", meta.NumDelivered, "err", err)
		_ = msg.NakWithDelay(retryDelay(meta.NumDelivered))
	}
}

// quarantine keeps a refused message, with its headers (the trace) and the
// reason, in the bus's quarantine under the agency "federation".
func (s *Service) quarantine(ctx context.Context, loop string, st *loopState, msg jetstream.Msg, meta *jetstream.MsgMetadata, cause error) error {
	q := record.Quarantine{
		Box: record.FederationBox, Data: msg.Data(), Reason: cause.Error(), Header: msg.Headers(),
		OriginSubject: msg.Subject(), OriginStream: meta.Stream, OriginSeq: meta.Sequence.Stream, Deliveries: meta.NumDelivered,
		MsgID: record.FederationQuarantineMsgID(loop, meta.Sequence.Stream),
	}
	if st.bus != "" {
		// Taken over a link: the sequence is the member's (informational),
		// and the entry is the only copy on this bus (retry.go).
		q.OriginStream, q.OriginMsgID = uplinkOrigin(st.bus), msg.Headers().Get(jetstream.MsgIDHeader)
	}
	_, err := record.WriteQuarantine(ctx, s.js, q)
	if err != nil {
		return fmt.Errorf("quarantine federation message: %w", err)
	}
	return nil
}

// refused wraps a reason as a permanent refusal.
func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrRefused, fmt.Errorf(format, args...))
}

// publish stores m in stream, waiting for the ack; a duplicate (the same
// message id again) is success.
func (s *Service) publish(ctx context.Context, m *nats.Msg, stream string) error {
	return publishTo(ctx, s.js, m, stream)
}

func publishTo(ctx context.Context, js jetstream.JetStream, m *nats.Msg, stream string) error {
	if _, err := js.PublishMsg(ctx, m, jetstream.WithExpectStream(stream)); err != nil {
		return fmt.Errorf("store %s in %s: %w", m.Subject, stream, err)
	}
	return nil
}

// known reports whether the directory lists code (for envelope
// validation of non-standard codes).
func (s *Service) known(code string) bool {
	_, err := s.c.LookupAgency(s.ctx, code)
	return err == nil
}

func (s *Service) lookup(ctx context.Context, code string) (*broker.Agency, error) {
	return s.c.LookupAgency(ctx, code)
}

func decodeAgency(b []byte) (broker.Agency, error) {
	var a broker.Agency
	err := json.Unmarshal(b, &a)
	return a, err
}
