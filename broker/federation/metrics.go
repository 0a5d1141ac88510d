package federation

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	envelopesDesc = prometheus.NewDesc("docaxis_federation_envelopes_total",
		"Envelope copies by sender bus, recipient bus and outcome (sent, delivered, failed), as this bus's record shows them.",
		[]string{"from_bus", "to_bus", "outcome"}, nil)
	latencyDesc = prometheus.NewDesc("docaxis_federation_delivery_latency_seconds",
		"Time from a copy on record to its delivered receipt, by sender bus and recipient bus.",
		[]string{"from_bus", "to_bus"}, nil)
	agencyEnvelopesDesc = prometheus.NewDesc("docaxis_federation_agency_envelopes_total",
		"Envelope copies by sending agency and outcome (sent, delivered, failed).",
		[]string{"agency", "bus", "outcome"}, nil)
	agencyLatencyDesc = prometheus.NewDesc("docaxis_federation_agency_delivery_latency_seconds",
		"Time from a copy on record to its delivered receipt, by sending agency.",
		[]string{"agency", "bus"}, nil)
	linkUpDesc = prometheus.NewDesc("docaxis_federation_link_up",
		"1 when the link to the peer bus is connected, 0 when down.", []string{"peer"}, nil)
	linkBacklogDesc = prometheus.NewDesc("docaxis_federation_link_backlog",
		"Messages stored on this bus waiting to cross the link to the peer.", []string{"peer"}, nil)
	linkIncomingDesc = prometheus.NewDesc("docaxis_federation_link_incoming",
		"Messages the peer holds for this bus, as last reported.", []string{"peer"}, nil)
	linkLastDeliveryDesc = prometheus.NewDesc("docaxis_federation_link_last_delivery_timestamp_seconds",
		"When the peer last confirmed what this bus sent.", []string{"peer"}, nil)
	movedDesc = prometheus.NewDesc("docaxis_federation_messages_total",
		"Messages the federation service handled since it started, by what it did.", []string{"action"}, nil)
)

// Collector exposes the bus's federation figures and links to Prometheus.
func (s *Service) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Service }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{envelopesDesc, latencyDesc, agencyEnvelopesDesc, agencyLatencyDesc, linkUpDesc, linkBacklogDesc, linkIncomingDesc, linkLastDeliveryDesc, movedDesc} {
		ch <- d
	}
}

func histogram(f Figures) map[float64]uint64 {
	out := make(map[float64]uint64, len(latencyBuckets))
	var cum uint64
	for i, b := range latencyBuckets {
		if i < len(f.hist) {
			cum += f.hist[i]
		}
		out[b] = cum
	}
	return out
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	buses, agencies := c.s.stats.snapshot()
	for _, f := range buses {
		ch <- prometheus.MustNewConstMetric(envelopesDesc, prometheus.CounterValue, float64(f.Sent), f.FromBus, f.ToBus, "sent")
		ch <- prometheus.MustNewConstMetric(envelopesDesc, prometheus.CounterValue, float64(f.Delivered), f.FromBus, f.ToBus, "delivered")
		ch <- prometheus.MustNewConstMetric(envelopesDesc, prometheus.CounterValue, float64(f.Failed), f.FromBus, f.ToBus, "failed")
		ch <- prometheus.MustNewConstHistogram(latencyDesc, f.Delivered, f.latencySum, histogram(f), f.FromBus, f.ToBus)
	}
	for _, f := range agencies {
		ch <- prometheus.MustNewConstMetric(agencyEnvelopesDesc, prometheus.CounterValue, float64(f.Sent), f.Agency, f.FromBus, "sent")
		ch <- prometheus.MustNewConstMetric(agencyEnvelopesDesc, prometheus.CounterValue, float64(f.Delivered), f.Agency, f.FromBus, "delivered")
		ch <- prometheus.MustNewConstMetric(agencyEnvelopesDesc, prometheus.CounterValue, float64(f.Failed), f.Agency, f.FromBus, "failed")
		ch <- prometheus.MustNewConstHistogram(agencyLatencyDesc, f.Delivered, f.latencySum, histogram(f), f.Agency, f.FromBus)
	}
	for k, v := range c.s.stats.snapshotMoved() {
		ch <- prometheus.MustNewConstMetric(movedDesc, prometheus.CounterValue, float64(v), k)
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, 5*time.Second)
	defer cancel()
	st, err := c.s.Status(ctx)
	if err != nil {
		return
	}
	for _, l := range st.Links {
		if l.State != LinkUnknown {
			up := 0.0
			if l.State == LinkUp {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(linkUpDesc, prometheus.GaugeValue, up, l.Peer)
		}
		ch <- prometheus.MustNewConstMetric(linkBacklogDesc, prometheus.GaugeValue, float64(l.Backlog), l.Peer)
		ch <- prometheus.MustNewConstMetric(linkIncomingDesc, prometheus.GaugeValue, float64(l.Incoming), l.Peer)
		if l.LastDelivery != nil {
			ch <- prometheus.MustNewConstMetric(linkLastDeliveryDesc, prometheus.GaugeValue, float64(l.LastDelivery.UnixNano())/1e9, l.Peer)
		}
	}
}
