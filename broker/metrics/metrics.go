// Package metrics exposes the bus's figures to Prometheus: envelopes sent,
// delivered and invalid, statuses, send→receipt latency (from the tracker,
// as it applies the record), and per-agency mailbox lag, redeliveries and
// quarantine (read from JetStream at scrape time).
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the bus's collectors.
type Metrics struct {
	reg       *prometheus.Registry
	sent      *prometheus.CounterVec
	delivered *prometheus.CounterVec
	invalid   *prometheus.CounterVec
	statuses  *prometheus.CounterVec
	latency   prometheus.Histogram
	svc       *bus.Service
	log       *slog.Logger
}

// New registers the bus's metrics and observes svc's tracker. Call before
// the tracker starts applying the record (i.e. right after StartService
// is fine: earlier changes are simply not counted).
func New(svc *bus.Service, log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.Default()
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "docaxis_envelopes_sent_total",
			Help: "Envelope copies stored in a recipient's mailbox, by sender."}, []string{"sender"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "docaxis_envelopes_delivered_total",
			Help: "Envelope copies the recipient verified and receipted, by recipient."}, []string{"recipient"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "docaxis_envelopes_invalid_total",
			Help: "Envelope copies the recipient refused as invalid, by recipient."}, []string{"recipient"}),
		statuses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "docaxis_statuses_total",
			Help: "State changes applied, by new state."}, []string{"state"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "docaxis_delivery_latency_seconds",
			Help:    "Time from an envelope stored in a mailbox to its delivered receipt.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20)}),
		svc: svc,
		log: log,
	}
	m.reg.MustRegister(m.sent, m.delivered, m.invalid, m.statuses, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&jsCollector{m: m})
	svc.Tracker.Observe(m.observe)
	return m
}

// Registry is where the metrics live (to add more or to gather in tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelWarn)})
}

func (m *Metrics) observe(t *broker.Tracking, prev envelope.State) {
	if prev == t.State {
		return
	}
	switch t.State {
	case envelope.StateSent:
		m.sent.WithLabelValues(t.Sender).Inc()
	case envelope.StateDelivered:
		m.delivered.WithLabelValues(t.Recipient).Inc()
		if len(t.History) > 0 && t.History[0].State == envelope.StateSent {
			if d := t.Updated.Sub(t.History[0].At); d >= 0 {
				m.latency.Observe(d.Seconds())
			}
		}
	case envelope.StateInvalid:
		m.invalid.WithLabelValues(t.Recipient).Inc()
	}
	m.statuses.WithLabelValues(string(t.State)).Inc()
}

// jsCollector reads per-agency figures from JetStream at scrape time.
type jsCollector struct{ m *Metrics }

var (
	lagDesc = prometheus.NewDesc("docaxis_mailbox_lag",
		"Envelopes in an agency's mailbox not yet acknowledged (pending + in flight).", []string{"agency"}, nil)
	redeliveredDesc = prometheus.NewDesc("docaxis_mailbox_redelivered",
		"Envelopes of an agency's mailbox currently being redelivered.", []string{"agency"}, nil)
	quarantineDesc = prometheus.NewDesc("docaxis_quarantine_messages",
		"Messages in quarantine, by agency (for recipient codes the directory does not hold: agency \"unregistered\").", []string{"agency"}, nil)
)

func (c *jsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- redeliveredDesc
	ch <- quarantineDesc
}

func (c *jsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	js := c.m.svc.Client.JetStream()
	// One listing of the record's consumers, not a request per agency: a
	// directory of 100,000 agencies has a mailbox only per endpoint (an
	// agency with credentials of its own, "mbox_", or a system, "sys_",
	// labelled "=" + its id).
	own := map[string]bool{} // agencies with a mailbox of their own
	if st, err := js.Stream(ctx, record.Stream); err == nil {
		lister := st.ListConsumers(ctx)
		for info := range lister.Info() {
			var label string
			if agency, ok := record.MailboxOfDurable(info.Name); ok {
				label = agency
				own[label] = true
			} else if sys, ok := record.SystemOfDurable(info.Name); ok {
				label = broker.SystemActor(sys)
			} else {
				continue
			}
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(info.NumPending+uint64(info.NumAckPending)), label)
			ch <- prometheus.MustNewConstMetric(redeliveredDesc, prometheus.GaugeValue, float64(info.NumRedelivered), label)
		}
		if err := lister.Err(); err != nil {
			c.m.log.Warn("metrics: mailboxes", "err", err)
		}
	}
	s, err := js.Stream(ctx, record.QuarantineStream)
	if err != nil {
		c.m.log.Warn("metrics: quarantine stream", "err", err)
		return
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(record.QuarantineSubject("*")))
	if err != nil {
		return
	}
	// Every agency with a mailbox of its own (0 when nothing is held),
	// and any other agency of the directory with something in quarantine.
	// A box is named by the recipient of the copy held, which the sender
	// chose: what is held for codes no directory holds is summed under
	// unregisteredLabel, or an agency publishing to made-up recipients
	// would choose how many series every scrape carries.
	counts := map[string]uint64{}
	for code := range own {
		counts[code] = 0
	}
	var registered map[string]bool // read once, when a box needs it
	for subject, n := range info.State.Subjects {
		code, ok := record.QuarantineAgency(subject)
		if !ok {
			continue
		}
		if !own[code] && code != broker.FederationQuarantine {
			if registered == nil {
				registered = c.registered(ctx)
			}
			if !registered[code] {
				code = unregisteredLabel
			}
		}
		counts[code] += n
	}
	for code, n := range counts {
		ch <- prometheus.MustNewConstMetric(quarantineDesc, prometheus.GaugeValue, float64(n), code)
	}
}

// unregisteredLabel labels what the quarantine holds for codes the
// directory does not hold (no agency code has this form).
const unregisteredLabel = "unregistered"

// registered is the set of the directory's agency codes (empty when the
// directory cannot be read: every box then counts as unregistered).
func (c *jsCollector) registered(ctx context.Context) map[string]bool {
	set := map[string]bool{}
	list, err := c.m.svc.Client.Agencies(ctx)
	if err != nil {
		c.m.log.Warn("metrics: directory", "err", err)
		return set
	}
	for _, a := range list {
		set[a.Code] = true
	}
	return set
}
