package federation

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The links of the national bus. A member's leaf connection lands in the
// member's own link account on the national's server (auth), which holds
// only that member's link:
//
//	AXIS_FED_RELAY     the queue of what waits for the member (work queue,
//	                   within the account's quota); the member's
//	                   AXIS_FED_IN sources it through consumer fed_down_<member>
//	KV_AXIS_DIRECTORY  the national directory's entries passed on to members
//	                   (memberDirKeys); the member's AXIS_FED_DIR sources it
//	                   through consumer fed_dir_<member>
//
// The national's federation service bridges that account and AXIS with a
// connection of its own in it (in process): it pulls what the member sends
// from the member's outbound consumer fed_up over the link, verifies it
// and relays it into AXIS_FED_RELAY (relay); it copies what the relay
// holds for the member into the member's queue (consumer fed_link_<member>
// on AXIS_FED_RELAY); and it copies the directory entries. Nothing a
// member sends reaches AXIS but what the relay verified, and nothing the
// national stores for a member before it verified it: a flood stays on
// the member's own bus.

// memberLink is the national's side of one member's link.
type memberLink struct {
	id string
	nc *nats.Conn // the national service's connection in the link account
	// js is the link account's JetStream; remote the member bus's, reached
	// over the link (its JetStream domain).
	js, remote jetstream.JetStream
	ready      bool
	// lastReceived is when the relay last took a message from the member.
	lastReceived atomic.Pointer[time.Time]
}

// memberDirFilters select, in a directory stream, the entries passed on to
// members.
func memberDirFilters() []string {
	out := make([]string, 0, len(memberDirKeys))
	for _, k := range memberDirKeys {
		out = append(out, record.KVSubject(record.DirectoryBucket, k+">"))
	}
	return out
}

func isMemberDirKey(key string) bool {
	for _, k := range memberDirKeys {
		if strings.HasPrefix(key, k) {
			return true
		}
	}
	return false
}

// ensureMember sets up, on the national bus, the link of member (it is
// idempotent): its link account applied to the server (with new leaf
// credentials for a member admitted by an earlier version, whose
// credentials were AXIS users), the national's connection in it, the
// member's queue and directory copy there, and the loops that pull from
// the member, copy into its queue and take in what it sends.
func (s *Service) ensureMember(ctx context.Context, member string) error {
	if !s.National() || member == s.bus || CheckBusID(member) != nil {
		return nil
	}
	s.linkMu.Lock()
	defer s.linkMu.Unlock()
	if l := s.mlinks[member]; l != nil && l.ready {
		return nil
	}
	a := s.links.Authority()
	if !a.HasLink(member) {
		// `federation member add` writes the link account before it lists
		// the member (auth.Authority.AdmitLeaf): a listed member without one
		// was admitted by an earlier version, whose credentials were AXIS
		// users.
		path := filepath.Join(s.cfg.Dir, "members", member, "uplink.creds")
		if err := a.LeafCreds(s.bus, member, path); err != nil {
			return fmt.Errorf("link of %s: %w", member, err)
		}
		s.log.Warn("federation: member bus admitted by an earlier version: its uplink credentials no longer work, hand it the new ones",
			"member", member, "credentials", path)
	}
	if err := s.links.Sync(); err != nil {
		s.log.Warn("federation: link accounts", "err", err)
	}
	s.mu.Lock()
	s.members[member] = true
	s.mu.Unlock()
	l := s.mlinks[member]
	if l == nil {
		var err error
		if l, err = s.openLink(member); err != nil {
			return err
		}
		s.mlinks[member] = l
	}
	if err := s.setupLink(ctx, l); err != nil {
		return err
	}
	l.ready = true
	return nil
}

// openLink connects the national service into member's link account.
func (s *Service) openLink(member string) (*memberLink, error) {
	if s.cfg.Server == nil {
		return nil, errors.New("link of " + member + ": the national bus runs its embedded server")
	}
	tok, seed, err := s.links.ServiceUser(member)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect("", nats.InProcessServer(s.cfg.Server), nats.UserJWTAndSeed(tok, string(seed)),
		nats.CustomInboxPrefix(auth.LinkInboxPrefix(member)), nats.Name("docaxis federation link "+member),
		nats.MaxReconnects(-1), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			s.log.Debug("federation: link connection", "member", member, "err", err)
		}))
	if err != nil {
		return nil, fmt.Errorf("link of %s: connect: %w", member, err)
	}
	l := &memberLink{id: member, nc: nc}
	if l.js, err = jetstream.New(nc); err == nil {
		l.remote, err = jetstream.NewWithDomain(nc, member)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("link of %s: %w", member, err)
	}
	return l, nil
}

// setupLink creates the member's queue and directory copy in its link
// account, moves an earlier version's link state out of AXIS, and starts
// the link's loops.
func (s *Service) setupLink(ctx context.Context, l *memberLink) error {
	m := l.id
	dirBytes := min(64<<20, s.cfg.LinkQuota/8)
	streams := []jetstream.StreamConfig{{
		Name:        RelayStream,
		Description: "docaxis federation: what waits for bus " + m,
		Subjects:    []string{relayPrefix + m + ".>"},
		// Taken messages leave: the queue holds what waits, within the
		// member's quota, and refuses more (the relay keeps it meanwhile).
		Retention:  jetstream.WorkQueuePolicy,
		Discard:    jetstream.DiscardNew,
		MaxBytes:   s.cfg.LinkQuota - dirBytes,
		MaxMsgs:    s.cfg.StreamMaxMsgs,
		MaxAge:     s.cfg.Retention,
		MaxMsgSize: maxMsgSize,
		Storage:    jetstream.FileStorage,
		Replicas:   s.cfg.Replicas,
		Duplicates: min(24*time.Hour, s.cfg.Retention),
	}, {
		Name:              kvDirectoryStream,
		Description:       "docaxis federation: the directory entries passed on to bus " + m,
		Subjects:          []string{record.KVSubject(record.DirectoryBucket, ">")},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxMsgsPerSubject: 1,
		MaxBytes:          dirBytes,
		MaxMsgSize:        maxMsgSize,
		Storage:           jetstream.FileStorage,
		Replicas:          s.cfg.Replicas,
		Duplicates:        time.Hour,
	}}
	for _, sc := range streams {
		if _, err := l.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("link of %s: stream %s: %w", m, sc.Name, err)
		}
	}
	if _, err := l.js.CreateOrUpdatePushConsumer(ctx, RelayStream, linkConsumer(downPrefix+m, linkSubject(m, "down"), relayPrefix+m+".>")); err != nil {
		return fmt.Errorf("link of %s: queue consumer: %w", m, err)
	}
	if _, err := l.js.CreateOrUpdatePushConsumer(ctx, kvDirectoryStream, linkConsumer(dirDownPrefix+m, linkSubject(m, "dir"), memberDirFilters()...)); err != nil {
		return fmt.Errorf("link of %s: directory consumer: %w", m, err)
	}
	for key, e := range s.dirSnap {
		if err := s.passOn(ctx, l, e); err != nil {
			return fmt.Errorf("link of %s: directory entry %s: %w", m, key, err)
		}
	}
	copyCC := jetstream.ConsumerConfig{Durable: linkCopyPrefix + m, FilterSubject: relayPrefix + m + ".>"}
	legacyDown, err := s.js.Consumer(ctx, RelayStream, downPrefix+m)
	if err == nil {
		// Before link accounts, the member sourced the relay itself: the
		// copy starts where that stopped.
		if floor := legacyDown.CachedInfo().AckFloor.Stream; floor > 0 {
			copyCC.DeliverPolicy, copyCC.OptStartSeq = jetstream.DeliverByStartSequencePolicy, floor+1
		}
	}
	if err := s.loopDone(ctx, s.js, RelayStream, copyCC, s.copyToLink(l), s.movedOn); err != nil {
		return err
	}
	if err := s.migrateLink(ctx, m); err != nil {
		return err
	}
	if err := s.attach(m, l.remote, OutStream, uplinkConsumer, s.relayFrom(l)); err != nil {
		return err
	}
	return s.ensureIngest(ctx, m)
}

// migrateLink moves an earlier version's link state of member out of AXIS:
// its consumers there go, and the stream that sourced the member stops
// sourcing (the national now pulls) while what it holds is relayed.
func (s *Service) migrateLink(ctx context.Context, m string) error {
	for _, c := range []struct{ stream, name string }{{RelayStream, downPrefix + m}, {kvDirectoryStream, dirDownPrefix + m}} {
		if err := s.js.DeleteConsumer(ctx, c.stream, c.name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("link of %s: remove consumer %s of an earlier version: %w", m, c.name, err)
		}
	}
	str, err := s.js.Stream(ctx, fromStream(m))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("link of %s: %w", m, err)
	}
	if cfg := str.CachedInfo().Config; len(cfg.Sources) > 0 {
		cfg.Sources = nil
		if _, err := s.js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("link of %s: stop the sourcing of an earlier version: %w", m, err)
		}
	}
	return s.loop(ctx, s.js, fromStream(m), jetstream.ConsumerConfig{Durable: relayConsumer}, s.relay(m))
}

// relayFrom is the relay of what member l sends.
func (s *Service) relayFrom(l *memberLink) handler {
	relay := s.relay(l.id)
	return func(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) error {
		now := time.Now()
		l.lastReceived.Store(&now)
		return relay(ctx, msg, meta)
	}
}

// copyToLink copies what the relay holds for member l into its queue; a
// full queue waits for the member to take some.
func (s *Service) copyToLink(l *memberLink) handler {
	return func(ctx context.Context, msg jetstream.Msg, _ *jetstream.MsgMetadata) error {
		out := &nats.Msg{Subject: msg.Subject(), Data: msg.Data(), Header: copyHeader(msg.Headers())}
		if err := publishTo(ctx, l.js, out, RelayStream); err != nil {
			return fmt.Errorf("%w: queue of bus %s: %w", errBackpressure, l.id, err)
		}
		return nil
	}
}

// passOn copies a directory entry into member l's directory copy.
func (s *Service) passOn(ctx context.Context, l *memberLink, e jetstream.KeyValueEntry) error {
	m := &nats.Msg{Subject: record.KVSubject(record.DirectoryBucket, e.Key()), Header: nats.Header{}}
	if e.Operation() == jetstream.KeyValuePut {
		m.Data = e.Value()
	} else {
		m.Header.Set("KV-Operation", "DEL")
	}
	m.Header.Set(jetstream.MsgIDHeader, "d."+e.Key()+"."+strconv.FormatUint(e.Revision(), 10))
	return publishTo(ctx, l.js, m, kvDirectoryStream)
}

// memberRemoved stops, on the national bus, the link of a member taken out
// of the federation: nothing more is taken from it nor put in its queue,
// and its link account's credentials, once revoked (auth.RevokeLeaf), stop
// working. What it sent and what waited for it stay on record.
func (s *Service) memberRemoved(member string) {
	s.linkMu.Lock()
	l := s.mlinks[member]
	delete(s.mlinks, member)
	s.linkMu.Unlock()
	s.stopLoops(func(name string, st *loopState) bool {
		return st.bus == member || name == loopName(RelayStream, linkCopyPrefix+member, "") || name == loopName(fromStream(member), relayConsumer, "")
	})
	if l != nil {
		l.nc.Close()
	}
	s.mu.Lock()
	delete(s.members, member)
	s.mu.Unlock()
	if err := s.links.Sync(); err != nil {
		s.log.Warn("federation: link accounts", "err", err)
	}
	s.log.Info("federation: member bus removed, its link stopped", "member", member)
}

// linkSyncInterval is how often the national applies link accounts changed
// by another process (`docaxis federation member add`, a removal) when the
// directory shows no change.
const linkSyncInterval = 15 * time.Second

// watchBuses follows the buses of the federation and the directory
// entries passed on to members: every bus takes in each other bus's
// traffic through a consumer of its own (ensureIngest); the national sets
// up and stops its members' links and copies the entries into their
// directory copies.
func (s *Service) watchBuses(ctx context.Context) error {
	keys := make([]string, 0, len(memberDirKeys))
	for _, k := range memberDirKeys {
		keys = append(keys, k+">")
	}
	w, err := s.dir.WatchFiltered(s.ctx, keys)
	if err != nil {
		return fmt.Errorf("watch the federation's buses: %w", err)
	}
	return s.follow(ctx, "the federation's buses", w, s.busEntry, following{every: linkSyncInterval, tick: s.resyncLinks})
}

func (s *Service) busEntry(e jetstream.KeyValueEntry) {
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	key, put := e.Key(), e.Operation() == jetstream.KeyValuePut
	if s.National() && isMemberDirKey(key) {
		s.linkMu.Lock()
		s.dirSnap[key] = e
		links := make([]*memberLink, 0, len(s.mlinks))
		for _, l := range s.mlinks {
			if l.ready {
				links = append(links, l)
			}
		}
		for _, l := range links {
			if err := s.passOn(ctx, l, e); err != nil {
				// setupLink passes everything on again.
				s.log.Warn("federation: pass a directory entry on", "member", l.id, "key", key, "err", err)
				l.ready = false
			}
		}
		s.linkMu.Unlock()
	}
	id, ok := strings.CutPrefix(key, busKeyPrefix)
	if !ok || id == s.bus || CheckBusID(id) != nil {
		return
	}
	switch {
	case put:
		if err := s.ensureIngest(ctx, id); err != nil {
			s.log.Warn("federation: take in from bus", "bus", id, "err", err)
		}
		if s.National() {
			if err := s.ensureMember(ctx, id); err != nil {
				s.log.Error("federation: set up member link", "member", id, "err", err)
			}
		}
	case s.National():
		s.memberRemoved(id)
	}
}

// resyncLinks applies link accounts changed by another process and sets up
// again the links whose set-up failed.
func (s *Service) resyncLinks() {
	if !s.National() {
		return
	}
	if err := s.links.Sync(); err != nil {
		s.log.Warn("federation: link accounts", "err", err)
	}
	s.mu.Lock()
	members := make([]string, 0, len(s.members))
	for m := range s.members {
		members = append(members, m)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	defer cancel()
	for _, m := range members {
		if err := s.ensureMember(ctx, m); err != nil {
			s.log.Warn("federation: set up member link", "member", m, "err", err)
		}
	}
}

// movedOn counts a relayed message out of its origin's share of the relay
// (its destination's queue, or the national's record, has it).
func (s *Service) movedOn(msg jetstream.Msg) {
	fs, err := parseFedSubject(relayPrefix, msg.Subject())
	if err != nil || fs.Origin == "" {
		return
	}
	s.mu.Lock()
	s.waiting[fs.Origin] = max(0, s.waiting[fs.Origin]-int64(len(msg.Data())))
	s.mu.Unlock()
}

// relayRoom reports, on the national, whether origin may have size more
// bytes in the relay (RelayQuota); the national's own traffic always may.
func (s *Service) relayRoom(origin string, size int) error {
	if origin == s.bus {
		return nil
	}
	s.mu.Lock()
	held := s.waiting[origin]
	s.mu.Unlock()
	if held+int64(size) > s.cfg.RelayQuota && held > 0 {
		s.stats.held(origin)
		return &retryAfter{d: backpressureDelay, err: fmt.Errorf("%w: bus %s has %d bytes in the relay not yet taken by their destinations (quota %d)", errBackpressure, origin, held, s.cfg.RelayQuota)}
	}
	return nil
}

// relayedFrom counts size bytes relayed from origin into its share.
func (s *Service) relayedFrom(origin string, size int) {
	if origin == s.bus {
		return
	}
	s.mu.Lock()
	s.waiting[origin] += int64(size)
	s.mu.Unlock()
}
