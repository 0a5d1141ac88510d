package vxp

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// opMetrics are the operations' figures on /metrics: requests by
// operation and answer code, and their durations.
type opMetrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
}

func newOpMetrics(reg prometheus.Registerer) (*opMetrics, error) {
	m := &opMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "docaxis_vxp_requests_total",
			Help: "Requests to the VXP compatibility API by operation and ErrorCode (0: OK).",
		}, []string{"operation", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "docaxis_vxp_request_seconds",
			Help:    "Time to answer a VXP compatibility API request, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.005, 3, 9),
		}, []string{"operation"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.seconds} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *opMetrics) done(op, code string, start time.Time) {
	m.requests.WithLabelValues(op, code).Inc()
	m.seconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
}
