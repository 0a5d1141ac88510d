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
	svc       *broker.Service
	log       *slog.Logger
}

// New registers the bus's metrics and observes svc's tracker. Call before
// the tracker starts applying the record (i.e. right after StartService
// is fine: earlier changes are simply not counted).
func New(svc *broker.Service, log *slog.Logger) *Metrics {
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
		"Messages in quarantine, by agency.", []string{"agency"}, nil)
)

func (c *jsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- redeliveredDesc
	ch <- quarantineDesc
}

func (c *jsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl := c.m.svc.Client
	js := cl.JetStream()
	agencies, _ := cl.Agencies(ctx)
	for _, a := range agencies {
		cons, err := js.Consumer(ctx, broker.StreamName, broker.MailboxDurable(a.Code))
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(info.NumPending+uint64(info.NumAckPending)), a.Code)
		ch <- prometheus.MustNewConstMetric(redeliveredDesc, prometheus.GaugeValue, float64(info.NumRedelivered), a.Code)
	}
	s, err := js.Stream(ctx, broker.QuarantineStream)
	if err != nil {
		c.m.log.Warn("metrics: quarantine stream", "err", err)
		return
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(broker.QuarantineSubject("*")))
	if err != nil {
		return
	}
	for _, a := range agencies {
		ch <- prometheus.MustNewConstMetric(quarantineDesc, prometheus.GaugeValue, float64(info.State.Subjects[broker.QuarantineSubject(a.Code)]), a.Code)
	}
}
