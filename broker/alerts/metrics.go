package alerts

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes the alerts to Prometheus: one series per firing
// alert (docaxis_alert_firing), the count per rule, the checks that
// failed, and what the webhook did.
func (m *Manager) Collector() prometheus.Collector { return collector{m} }

var (
	descFiring = prometheus.NewDesc("docaxis_alert_firing",
		"An alert that holds now (value 1), by rule, subject and severity.", []string{"rule", "subject", "severity"}, nil)
	descRule = prometheus.NewDesc("docaxis_alerts_firing",
		"Alerts holding now, by rule.", []string{"rule"}, nil)
	descCheckFailed = prometheus.NewDesc("docaxis_alert_check_failures_total",
		"Rounds in which a rule could not be checked (its source failed).", []string{"rule"}, nil)
	descLastCheck = prometheus.NewDesc("docaxis_alert_last_check_timestamp_seconds",
		"When the rules were last checked.", nil, nil)
	descWebhook = prometheus.NewDesc("docaxis_alert_webhook_events_total",
		"Alert events by what the webhook did with them: sent, retried (attempts that failed and were tried again), failed (attempts spent), dropped (queue full).", []string{"result"}, nil)
)

type collector struct{ m *Manager }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFiring, descRule, descCheckFailed, descLastCheck, descWebhook} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	perRule := map[Rule]int{}
	for _, a := range m.List() {
		if a.State != Firing {
			continue
		}
		perRule[a.Rule]++
		ch <- prometheus.MustNewConstMetric(descFiring, prometheus.GaugeValue, 1, string(a.Rule), a.Subject, a.Severity)
	}
	m.mu.RLock()
	for _, r := range Rules {
		ch <- prometheus.MustNewConstMetric(descRule, prometheus.GaugeValue, float64(perRule[r]), string(r))
		ch <- prometheus.MustNewConstMetric(descCheckFailed, prometheus.CounterValue, float64(m.failures[r]), string(r))
	}
	if !m.lastRun.IsZero() {
		ch <- prometheus.MustNewConstMetric(descLastCheck, prometheus.GaugeValue, float64(m.lastRun.Unix()))
	}
	m.mu.RUnlock()
	if h := m.hook; h != nil {
		for result, v := range map[string]uint64{"sent": h.sent.Load(), "retried": h.retries.Load(), "failed": h.failed.Load(), "dropped": h.dropped.Load()} {
			ch <- prometheus.MustNewConstMetric(descWebhook, prometheus.CounterValue, float64(v), result)
		}
	}
}
