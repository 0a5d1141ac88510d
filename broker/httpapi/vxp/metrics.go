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
	// A second server on the same registry counts into the first's.
	var are prometheus.AlreadyRegisteredError
	if err := reg.Register(m.requests); errors.As(err, &are) {
		m.requests = are.ExistingCollector.(*prometheus.CounterVec)
	} else if err != nil {
		return nil, err
	}
	if err := reg.Register(m.seconds); errors.As(err, &are) {
		m.seconds = are.ExistingCollector.(*prometheus.HistogramVec)
	} else if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *opMetrics) done(op, code string, start time.Time) {
	m.requests.WithLabelValues(op, code).Inc()
	m.seconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
}
