package federation

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
	"github.com/docaxis/docaxis/envelope"
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
	// an external cluster: links then show as "unknown").
	Server *server.Server
	// Tracker, when set, feeds the statistics.
	Tracker *broker.Tracker
	// Store receives attachments coming in from other buses (default: the
	// client's store).
	Store storage.Store
	// Replicas of the federation streams (default 1).
	Replicas int
	// Retention of the federation streams: how long a message may wait for
	// a link, and how long copies in transit stay for inspection (default
	// 90 days; the record itself is AXIS).
	Retention time.Duration
	Logger    *slog.Logger
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
	statSub *nats.Subscription

	mu      sync.Mutex
	loops   map[string]bool // consumers running, by stream/consumer
	local   map[string]bool // agency codes this bus serves (for delete announcements)
	members map[string]bool
}

// National reports whether this is the national bus.
func (s *Service) National() bool { return s.cfg.National == s.bus }

// Start sets up the federation streams of the bus, starts following the
// directory and starts moving messages. Call after broker.StartService.
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
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Retention == 0 {
		cfg.Retention = 90 * 24 * time.Hour
	}
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
		id: cfg.Identity, book: newTrustBook(), log: cfg.Logger.With("bus", cfg.BusID), loops: map[string]bool{}, local: map[string]bool{}, members: map[string]bool{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.book.setBus(s.bus, cfg.CA.Cert)
	var err error
	if s.dir, err = s.js.KeyValue(ctx, broker.DirectoryBucket); err != nil {
		return nil, fmt.Errorf("start federation: %w", err)
	}
	if err := s.setup(ctx); err != nil {
		s.cancel()
		return nil, err
	}
	s.stats = newStats(s)
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
	if s.statSub, err = s.nc.Subscribe(StatusSubject, s.answerStatus); err != nil {
		s.Stop()
		return nil, fmt.Errorf("start federation: %w", err)
	}
	if err := s.startRetry(); err != nil {
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
		_ = s.statSub.Unsubscribe()
	}
	s.cancel()
	s.wg.Wait()
}

func (s *Service) streamConfig(name string, subjects []string, sources []*jetstream.StreamSource) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: "docaxis federation",
		Subjects:    subjects,
		Sources:     sources,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.cfg.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		Duplicates:  min(24*time.Hour, s.cfg.Retention),
		Discard:     jetstream.DiscardOld,
	}
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
		if _, err := s.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("set up federation stream %s: %w", sc.Name, err)
		}
	}
	if !s.National() {
		if _, err := s.js.CreateOrUpdatePushConsumer(ctx, OutStream, linkConsumer(uplinkConsumer, linkSubject(s.bus, "up"))); err != nil {
			return fmt.Errorf("set up the uplink consumer: %w", err)
		}
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

// ensureMember sets up, on the national bus, the link of member: the
// stream sourcing what the member sends up, and the two consumers the
// member's streams source from (its relay queue and the directory).
func (s *Service) ensureMember(ctx context.Context, member string) error {
	if _, err := s.js.CreateOrUpdatePushConsumer(ctx, RelayStream, linkConsumer(downPrefix+member, linkSubject(member, "down"), relayPrefix+member+".>")); err != nil {
		return fmt.Errorf("link of %s: relay consumer: %w", member, err)
	}
	dirFilters := []string{"$KV." + broker.DirectoryBucket + ".agency.>", "$KV." + broker.DirectoryBucket + "." + busKeyPrefix + ">", "$KV." + broker.DirectoryBucket + ".crl.>"}
	if _, err := s.js.CreateOrUpdatePushConsumer(ctx, kvDirectoryStream, linkConsumer(dirDownPrefix+member, linkSubject(member, "dir"), dirFilters...)); err != nil {
		return fmt.Errorf("link of %s: directory consumer: %w", member, err)
	}
	sc := s.streamConfig(fromStream(member), nil, []*jetstream.StreamSource{{Name: OutStream, Domain: member,
		Consumer: &jetstream.StreamConsumerSource{Name: uplinkConsumer, DeliverSubject: linkSubject(member, "up")}}})
	if _, err := s.js.CreateOrUpdateStream(ctx, sc); err != nil {
		return fmt.Errorf("link of %s: stream %s: %w", member, sc.Name, err)
	}
	s.mu.Lock()
	s.members[member] = true
	s.mu.Unlock()
	return s.loop(ctx, fromStream(member), jetstream.ConsumerConfig{Durable: relayConsumer}, s.relay(member))
}

func (s *Service) startLoops(ctx context.Context) error {
	fwd := jetstream.ConsumerConfig{Durable: forwardConsumer, FilterSubjects: []string{"axis.doc.>", "axis.status.>"}}
	if err := s.loop(ctx, broker.StreamName, fwd, s.forward); err != nil {
		return err
	}
	if s.National() {
		if err := s.loop(ctx, OutStream, jetstream.ConsumerConfig{Durable: relayConsumer}, s.relay(s.bus)); err != nil {
			return err
		}
		return s.loop(ctx, RelayStream, jetstream.ConsumerConfig{Durable: ingestConsumer, FilterSubject: relayPrefix + s.bus + ".>"}, s.ingest)
	}
	if err := s.loop(ctx, InStream, jetstream.ConsumerConfig{Durable: ingestConsumer}, s.ingest); err != nil {
		return err
	}
	return s.loop(ctx, DirStream, jetstream.ConsumerConfig{Durable: dirsyncConsumer}, s.dirsync)
}

// inboundStream holds the messages addressed to this bus (and their
// attachment chunks).
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

// loop creates (or updates) a durable pull consumer and handles its
// messages one at a time, in stream order, until Stop: attachments go
// out before the envelope that lists them, and a message is acknowledged
// only once what it caused is stored.
func (s *Service) loop(ctx context.Context, stream string, cc jetstream.ConsumerConfig, h handler) error {
	name := stream + "/" + cc.Durable
	s.mu.Lock()
	running := s.loops[name]
	s.loops[name] = true
	s.mu.Unlock()
	if running {
		return nil
	}
	cc.Description = "docaxis federation"
	cc.AckPolicy = jetstream.AckExplicitPolicy
	cc.DeliverPolicy = jetstream.DeliverAllPolicy
	// Long enough for the largest attachment to be pushed before the
	// envelope message is handed out again.
	cc.AckWait = 5 * time.Minute
	cc.MaxDeliver = -1
	cc.MaxAckPending = 256
	cons, err := s.js.CreateOrUpdateConsumer(ctx, stream, cc)
	if err != nil {
		s.mu.Lock()
		delete(s.loops, name)
		s.mu.Unlock()
		return fmt.Errorf("federation consumer %s: %w", name, err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for s.ctx.Err() == nil {
			it, err := cons.Messages(jetstream.PullMaxMessages(64))
			if err != nil {
				s.log.Warn("federation: consume", "consumer", name, "err", err)
				sleep(s.ctx, time.Second)
				continue
			}
			stop := context.AfterFunc(s.ctx, it.Stop)
			for {
				msg, err := it.Next()
				if err != nil {
					if s.ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						s.log.Warn("federation: consume", "consumer", name, "err", err)
					}
					break
				}
				s.handle(name, msg, h)
			}
			stop()
			it.Stop()
			if s.ctx.Err() == nil {
				sleep(s.ctx, time.Second)
			}
		}
	}()
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (s *Service) handle(name string, msg jetstream.Msg, h handler) {
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.NakWithDelay(time.Second)
		return
	}
	// A message in hand is finished even when Stop comes meanwhile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 5*time.Minute)
	defer cancel()
	err = h(ctx, msg, meta)
	switch {
	case err == nil:
		if err := msg.DoubleAck(ctx); err != nil {
			s.log.Warn("federation: ack", "consumer", name, "seq", meta.Sequence.Stream, "err", err)
		}
	case errors.Is(err, ErrRefused) || meta.NumDelivered >= maxAttempts:
		s.log.Warn("federation: message refused, quarantined", "consumer", name, "subject", msg.Subject(), "seq", meta.Sequence.Stream, "err", err)
		if qerr := s.quarantine(ctx, msg, meta, err); qerr != nil {
			s.log.Warn("federation: quarantine failed, retrying later", "consumer", name, "err", qerr)
			_ = msg.NakWithDelay(10 * time.Second)
			return
		}
		s.stats.refused()
		_ = msg.Term()
	default:
		s.log.Info("federation: retry later", "consumer", name, "subject", msg.Subject(), "seq", meta.Sequence.Stream, "attempt", meta.NumDelivered, "err", err)
		_ = msg.NakWithDelay(retryDelays[min(int(meta.NumDelivered), len(retryDelays))-1])
	}
}

// quarantine keeps a refused message, with its headers (the trace) and the
// reason, in the bus's quarantine under the agency "federation".
func (s *Service) quarantine(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, cause error) error {
	q := &nats.Msg{Subject: broker.QuarantineSubject(quarantineAgency), Data: msg.Data(), Header: copyHeader(msg.Headers())}
	q.Header.Del(jetstream.MsgIDHeader)
	q.Header.Set(broker.HeaderReason, cause.Error())
	q.Header.Set(broker.HeaderOriginSubject, msg.Subject())
	q.Header.Set(broker.HeaderAgency, quarantineAgency)
	q.Header.Set(HeaderOriginStream, meta.Stream)
	q.Header.Set(broker.HeaderOriginSeq, strconv.FormatUint(meta.Sequence.Stream, 10))
	q.Header.Set(broker.HeaderDeliveries, strconv.FormatUint(meta.NumDelivered, 10))
	if e, err := envelope.Peek(msg.Data()); err == nil {
		q.Header.Set(broker.HeaderEnvelope, e.ID)
	}
	q.Header.Set(jetstream.MsgIDHeader, "fq."+meta.Stream+"."+strconv.FormatUint(meta.Sequence.Stream, 10))
	if _, err := s.js.PublishMsg(ctx, q, jetstream.WithExpectStream(broker.QuarantineStream)); err != nil {
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
	if _, err := s.js.PublishMsg(ctx, m, jetstream.WithExpectStream(stream)); err != nil {
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
