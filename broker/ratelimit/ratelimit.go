// Package ratelimit is the bus's one token-bucket limiter: a bucket per
// key (an agency, an API token, an operator), used by the client's publish
// rate, the bus's request services, the attachment service and the HTTP
// API.
package ratelimit

import (
	"sync"
	"time"
)

// Rate is how a bucket fills: PerSecond tokens a second, up to Burst. A
// PerSecond of zero or less lets everything through; a Burst below one is
// taken as one, since a bucket that never holds a whole token would refuse
// everything.
type Rate struct {
	PerSecond float64
	Burst     float64
}

// Limiter keeps a token bucket per key. A new key starts with a full
// bucket. The zero value is ready to use and keeps every key's bucket;
// MaxKeys bounds them.
type Limiter struct {
	// MaxKeys, when positive, bounds the buckets kept: when a new key
	// would go beyond it, full buckets are dropped first, which forgets
	// nothing since a full bucket is what a new key starts with.
	MaxKeys int

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// Take takes one token from key's bucket at rate r as of now. When there
// is none it returns false and how long until there is one.
func (l *Limiter) Take(key string, r Rate, now time.Time) (wait time.Duration, ok bool) {
	if r.PerSecond <= 0 {
		return 0, true
	}
	burst := max(1, r.Burst)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if l.buckets == nil {
			l.buckets = map[string]*bucket{}
		}
		if l.MaxKeys > 0 && len(l.buckets) >= l.MaxKeys {
			l.prune(r.PerSecond, burst, now)
		}
		b = &bucket{tokens: burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*r.PerSecond)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / r.PerSecond * float64(time.Second)), false
}

// Allow is Take at rate r now, for callers that do not tell anyone when to
// come back.
func (l *Limiter) Allow(key string, r Rate) bool {
	_, ok := l.Take(key, r, time.Now())
	return ok
}

// Len is how many buckets the limiter keeps.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

func (l *Limiter) prune(perSecond, burst float64, now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*perSecond >= burst {
			delete(l.buckets, k)
		}
	}
}
