package federation

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// Figures count envelope copies by outcome, as the bus's tracker sees them:
// Sent when a copy is on record (for a copy to another bus: when this bus
// accepted it, the start of store and forward), Delivered when the
// recipient's signed receipt came back, Failed when the recipient refused
// it as invalid. Latency runs from sent to the delivered receipt.
type Figures struct {
	// FromBus and ToBus: the buses of the sender and of the recipient (per
	// bus figures); Agency: the sending agency (per agency figures).
	FromBus   string `json:"from_bus,omitempty"`
	ToBus     string `json:"to_bus,omitempty"`
	Agency    string `json:"agency,omitempty"`
	Sent      uint64 `json:"sent"`
	Delivered uint64 `json:"delivered"`
	Failed    uint64 `json:"failed"`
	// LatencyMean and LatencyMax of the delivered copies, in seconds.
	LatencyMean float64 `json:"latency_mean_s"`
	LatencyMax  float64 `json:"latency_max_s"`

	latencySum float64
	hist       []uint64 // counts per latencyBuckets (cumulative at export)
}

// latencyBuckets of the delivery latency histogram, in seconds.
var latencyBuckets = []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600, 7 * 24 * 3600}

func (f *Figures) add(sent, delivered, failed bool, latency float64) {
	if sent {
		f.Sent++
	}
	if failed {
		f.Failed++
	}
	if delivered {
		f.Delivered++
		if latency >= 0 {
			f.latencySum += latency
			f.LatencyMax = max(f.LatencyMax, latency)
			if f.hist == nil {
				f.hist = make([]uint64, len(latencyBuckets))
			}
			for i, b := range latencyBuckets {
				if latency <= b {
					f.hist[i]++
					break
				}
			}
		}
	}
	if f.Delivered > 0 {
		f.LatencyMean = f.latencySum / float64(f.Delivered)
	}
}

type pairKey struct{ from, to string }

// stats keeps the figures of the bus, per (sender bus, recipient bus) and
// per sending agency, and counters of the federation's own work.
type stats struct {
	s        *Service
	mu       sync.Mutex
	buses    map[pairKey]*Figures
	agencies map[string]*Figures
	moved    map[string]uint64 // "forwarded:<bus>", "relayed:<from>:<to>", "ingested:<from>", "refused", "dropped:<loop>", "held:<origin>"
	// horizon: tracking changes caused by record messages up to this
	// sequence are counted by seed, later ones by observe.
	horizon uint64
	seeded  bool
}

func newStats(s *Service) *stats {
	st := &stats{s: s, buses: map[pairKey]*Figures{}, agencies: map[string]*Figures{}, moved: map[string]uint64{}}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	if str, err := s.js.Stream(ctx, record.Stream); err == nil {
		if info, err := str.Info(ctx); err == nil {
			st.horizon = info.State.LastSeq
		}
	}
	return st
}

func (st *stats) busOf(code string) string {
	a, err := st.s.c.LookupAgency(st.s.ctx, code)
	if err != nil || a.Bus == "" {
		return st.s.bus
	}
	return a.Bus
}

// count adds one tracking change: sent for a new pair, delivered or failed
// for those transitions.
func (st *stats) count(t *broker.Tracking, sent, delivered, failed bool) {
	if !sent && !delivered && !failed {
		return
	}
	latency := -1.0
	if delivered && len(t.History) > 0 && t.History[0].State == envelope.StateSent {
		for _, ev := range t.History {
			if ev.State == envelope.StateDelivered {
				latency = max(0, ev.At.Sub(t.History[0].At).Seconds())
				break
			}
		}
	}
	k := pairKey{st.busOf(t.Sender), st.busOf(t.Recipient)}
	st.mu.Lock()
	defer st.mu.Unlock()
	f := st.buses[k]
	if f == nil {
		f = &Figures{FromBus: k.from, ToBus: k.to}
		st.buses[k] = f
	}
	f.add(sent, delivered, failed, latency)
	a := st.agencies[t.Sender]
	if a == nil {
		a = &Figures{Agency: t.Sender, FromBus: k.from}
		st.agencies[t.Sender] = a
	}
	a.add(sent, delivered, failed, latency)
}

// observe is the tracker observer.
func (st *stats) observe(t *broker.Tracking, prev envelope.State) {
	if len(t.History) > 0 && t.History[len(t.History)-1].Seq != 0 && t.History[len(t.History)-1].Seq <= st.horizon {
		return // on record before the service started: seed counts it
	}
	st.count(t, prev == "", t.State == envelope.StateDelivered && prev != envelope.StateDelivered, t.State == envelope.StateInvalid && prev != envelope.StateInvalid)
}

// seed counts what the tracking bucket holds about the record up to the
// horizon, so that figures do not restart from zero with the service.
func (st *stats) seed(ctx context.Context) {
	defer func() {
		st.mu.Lock()
		st.seeded = true
		st.mu.Unlock()
	}()
	if st.horizon == 0 {
		return
	}
	kv, err := st.s.js.KeyValue(ctx, record.TrackBucket)
	if err != nil {
		return
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		st.s.log.Warn("federation: statistics not seeded", "err", err)
		return
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok || e == nil {
				return
			}
			var t broker.Tracking
			if json.Unmarshal(e.Value(), &t) != nil {
				continue
			}
			var sent, delivered, failed bool
			for _, ev := range t.History {
				if ev.Seq > st.horizon {
					continue
				}
				switch ev.State {
				case envelope.StateSent:
					sent = true
				case envelope.StateDelivered:
					delivered = true
				case envelope.StateInvalid:
					failed = true
				}
			}
			st.count(&t, sent, delivered, failed)
		}
	}
}

func (st *stats) inc(key string) {
	st.mu.Lock()
	st.moved[key]++
	st.mu.Unlock()
}

func (st *stats) forwarded(to string)     { st.inc("forwarded:" + to) }
func (st *stats) relayed(from, to string) { st.inc("relayed:" + from + ":" + to) }
func (st *stats) ingested(from string)    { st.inc("ingested:" + from) }
func (st *stats) refused()                { st.inc("refused") }
func (st *stats) dropped(loop string)     { st.inc("dropped:" + loop) }
func (st *stats) held(origin string)      { st.inc("held:" + origin) }
func (st *stats) snapshotMoved() map[string]uint64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make(map[string]uint64, len(st.moved))
	for k, v := range st.moved {
		out[k] = v
	}
	return out
}

// snapshot returns copies of the figures, sorted.
func (st *stats) snapshot() (buses, agencies []Figures) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, f := range st.buses {
		c := *f
		c.hist = append([]uint64(nil), f.hist...)
		buses = append(buses, c)
	}
	for _, f := range st.agencies {
		c := *f
		c.hist = append([]uint64(nil), f.hist...)
		agencies = append(agencies, c)
	}
	sort.Slice(buses, func(i, j int) bool {
		if buses[i].FromBus != buses[j].FromBus {
			return buses[i].FromBus < buses[j].FromBus
		}
		return buses[i].ToBus < buses[j].ToBus
	})
	sort.Slice(agencies, func(i, j int) bool { return agencies[i].Agency < agencies[j].Agency })
	return buses, agencies
}
