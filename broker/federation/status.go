package federation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Link states.
const (
	LinkUp      = "up"
	LinkDown    = "down"
	LinkUnknown = "unknown" // no embedded server to ask (external cluster)
)

// Link is the state of the link between this bus and another: a member's
// uplink to the national, or on the national one link per member.
type Link struct {
	Peer  string `json:"peer"`
	State string `json:"state"`
	RTT   string `json:"rtt,omitempty"`
	// Backlog counts the messages waiting on this bus to cross the link
	// (envelopes, statuses, attachment parts, directory entries); they are
	// stored durably and leave when the link is up.
	Backlog uint64 `json:"backlog"`
	// LastDelivery is when the other side last confirmed receipt of what
	// this bus sent over the link.
	LastDelivery *time.Time `json:"last_delivery,omitempty"`
	// Incoming is how many messages the other side still holds for this
	// bus, as last reported over the link; LastReceived is when the last
	// one arrived.
	Incoming     uint64     `json:"incoming"`
	LastReceived *time.Time `json:"last_received,omitempty"`
	Error        string     `json:"error,omitempty"`
}

// Status is what `docaxis federation status` shows.
type Status struct {
	Bus      string    `json:"bus"`
	National string    `json:"national"`
	Role     string    `json:"role"`
	At       time.Time `json:"at"`
	Links    []Link    `json:"links"`
	// Queues are the bus's own federation consumers and what they have
	// still to handle (e.g. "forward": record messages not yet examined).
	Queues map[string]uint64 `json:"queues"`
	// Moved counts what the service did since it started: forwarded:<bus>,
	// relayed:<from>:<to>, ingested:<from>, refused, dropped:<loop> (file
	// parts no relayed envelope lists), held:<bus> (the national took
	// nothing more from a member over its RelayQuota, for a while).
	Moved map[string]uint64 `json:"moved"`
	// Buses are the figures per (sender bus, recipient bus), Agencies per
	// sending agency; Seeded is false while the figures of the record before
	// the start are still being counted.
	Buses    []Figures `json:"buses"`
	Agencies []Figures `json:"agencies"`
	Seeded   bool      `json:"seeded"`
}

// Status reports the links, queues and figures of the bus.
func (s *Service) Status(ctx context.Context) (*Status, error) {
	st := &Status{Bus: s.bus, National: s.cfg.National, Role: s.role(), At: time.Now().UTC(), Queues: map[string]uint64{}}
	leafs := s.leafs()
	if s.National() {
		s.mu.Lock()
		members := make([]string, 0, len(s.members))
		for m := range s.members {
			members = append(members, m)
		}
		s.mu.Unlock()
		sort.Strings(members)
		for _, m := range members {
			st.Links = append(st.Links, s.memberLinkStatus(ctx, leafs, m))
		}
	} else {
		n := s.cfg.National
		l := Link{Peer: n, State: linkState(leafs, n)}
		if li := leafs[ServerName(n)]; li != nil {
			l.RTT = li.RTT
		}
		s.consumerBacklog(ctx, &l, s.js, OutStream, uplinkConsumer)
		s.sourceState(ctx, &l, InStream)
		st.Links = append(st.Links, l)
	}
	s.mu.Lock()
	loops := make([]string, 0, len(s.loops))
	for name := range s.loops {
		loops = append(loops, name)
	}
	s.mu.Unlock()
	for _, name := range loops {
		s.mu.Lock()
		ls := s.loops[name]
		s.mu.Unlock()
		if ls == nil || ls.bus != "" {
			continue // another bus's consumer: its link's Incoming
		}
		if c, err := ls.js.Consumer(ctx, ls.stream, ls.durable); err == nil {
			if info, err := c.Info(ctx); err == nil {
				st.Queues[name] = info.NumPending + uint64(info.NumAckPending)
			}
		}
	}
	st.Moved = s.stats.snapshotMoved()
	st.Buses, st.Agencies = s.stats.snapshot()
	s.stats.mu.Lock()
	st.Seeded = s.stats.seeded
	s.stats.mu.Unlock()
	return st, nil
}

// memberLinkStatus is, on the national bus, the state of member m's link:
// up while a leaf connection is bound to its link account; the backlog is
// what the relay holds for it not yet in its queue plus its queue; incoming
// is what waits on the member for the national (asked over the link).
func (s *Service) memberLinkStatus(ctx context.Context, leafs map[string]*server.LeafInfo, m string) Link {
	l := Link{Peer: m, State: LinkUnknown}
	if leafs != nil {
		l.State = LinkDown
		if acc, ok := s.links.Account(m); ok {
			for _, li := range leafs {
				if li.Account == acc {
					l.State, l.RTT = LinkUp, li.RTT
				}
			}
		}
	}
	s.consumerBacklog(ctx, &l, s.js, RelayStream, linkCopyPrefix+m)
	copied := l.Backlog
	s.linkMu.Lock()
	ml := s.mlinks[m]
	s.linkMu.Unlock()
	if ml == nil {
		if l.Error == "" {
			l.Error = "link not set up"
		}
		return l
	}
	l.LastDelivery = nil
	s.consumerBacklog(ctx, &l, ml.js, RelayStream, downPrefix+m)
	l.Backlog += copied
	if t := ml.lastReceived.Load(); t != nil {
		at := t.UTC()
		l.LastReceived = &at
	}
	if l.State == LinkUp {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if c, err := ml.remote.Consumer(ictx, OutStream, uplinkConsumer); err == nil {
			info := c.CachedInfo()
			l.Incoming = info.NumPending + uint64(info.NumAckPending)
		}
	}
	return l
}

// ServerName is the NATS server name of a bus's embedded server: leaf
// connections report it, which is how a link's state is found.
func ServerName(bus string) string { return "docaxis-" + bus }

func (s *Service) leafs() map[string]*server.LeafInfo {
	if s.cfg.Server == nil {
		return nil
	}
	lz, err := s.cfg.Server.Leafz(&server.LeafzOptions{})
	if err != nil {
		return map[string]*server.LeafInfo{}
	}
	out := map[string]*server.LeafInfo{}
	for _, l := range lz.Leafs {
		out[l.Name] = l
	}
	return out
}

func linkState(leafs map[string]*server.LeafInfo, peer string) string {
	if leafs == nil {
		return LinkUnknown
	}
	if leafs[ServerName(peer)] != nil {
		return LinkUp
	}
	return LinkDown
}

// consumerBacklog fills what waits on this side: the link consumer's
// messages not yet confirmed by the other side.
func (s *Service) consumerBacklog(ctx context.Context, l *Link, js jetstream.JetStream, stream, durable string) {
	var c interface {
		Info(context.Context) (*jetstream.ConsumerInfo, error)
	}
	c, err := js.Consumer(ctx, stream, durable)
	if errors.Is(err, jetstream.ErrNotPullConsumer) {
		c, err = js.PushConsumer(ctx, stream, durable)
	}
	if err != nil {
		l.Error = fmt.Sprintf("consumer %s on %s: %v", durable, stream, err)
		return
	}
	info, err := c.Info(ctx)
	if err != nil {
		l.Error = fmt.Sprintf("consumer %s on %s: %v", durable, stream, err)
		return
	}
	l.Backlog += info.NumPending + uint64(info.NumAckPending)
	if t := info.AckFloor.Last; t != nil && !t.IsZero() {
		at := t.UTC()
		l.LastDelivery = &at
	}
}

// sourceState fills what comes in: the sourcing stream's view of the other
// side's queue for this bus.
func (s *Service) sourceState(ctx context.Context, l *Link, stream string) {
	str, err := s.js.Stream(ctx, stream)
	if err != nil {
		l.Error = fmt.Sprintf("stream %s: %v", stream, err)
		return
	}
	info, err := str.Info(ctx)
	if err != nil {
		l.Error = fmt.Sprintf("stream %s: %v", stream, err)
		return
	}
	if info.State.Msgs > 0 && !info.State.LastTime.IsZero() {
		at := info.State.LastTime.UTC()
		l.LastReceived = &at
	}
	if len(info.Sources) > 0 {
		src := info.Sources[0]
		l.Incoming = src.Lag
		if src.Error != nil && l.Error == "" {
			l.Error = src.Error.Error()
		}
	}
}

func (s *Service) answerStatus(m *nats.Msg) {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	st, err := s.Status(ctx)
	var b []byte
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	} else {
		b, _ = json.Marshal(st)
	}
	_ = m.Respond(b)
}

// QueryStatus asks the federation service of the bus nc is connected to
// for its status (with the bus's own credentials).
func QueryStatus(ctx context.Context, nc *nats.Conn) (*Status, error) {
	m, err := nc.RequestWithContext(ctx, StatusSubject, nil)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("%w (start it with docaxis serve --bus-id)", ErrNotRunning)
	}
	if err != nil {
		return nil, fmt.Errorf("federation status: %w", err)
	}
	var out struct {
		Status
		Error string `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &out); err != nil {
		return nil, fmt.Errorf("federation status: %w", err)
	}
	if out.Error != "" {
		return nil, fmt.Errorf("federation status: %s", out.Error)
	}
	return &out.Status, nil
}
