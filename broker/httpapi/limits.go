package httpapi

import (
	"io"
	"sync"
	"time"
)

// limiter is a token bucket per agency. Agencies are few (one per
// registered code), so buckets are never evicted.
type limiter struct {
	rate    float64
	burst   float64
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), buckets: map[string]*bucket{}}
}

// allow takes one token for agency; when there is none it says how long
// until there is.
func (l *limiter) allow(agency string, now time.Time) (time.Duration, bool) {
	if l.rate < 0 {
		return 0, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[agency]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[agency] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
}

// capReader fails with a *TooLargeError once more than limit bytes went
// through, so an oversize attachment is refused while it streams in.
type capReader struct {
	r     io.Reader
	n     int64
	limit int64
	what  string
	// err keeps what went wrong reading the request, so that a broken
	// upload is told apart from a store that failed.
	err error
}

func (c *capReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		err = &TooLargeError{What: c.what, Limit: c.limit}
	}
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}
