package httpapi

import (
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker"
)

// envelopeCache keeps envelopes read back from the record by sequence.
// The bytes never change; entries expire only so that verification (a
// revoked certificate, a new trust root) is redone now and then.
type envelopeCache struct {
	mu      sync.Mutex
	max     int
	ttl     time.Duration
	entries map[uint64]cached
}

type cached struct {
	se *broker.StoredEnvelope
	at time.Time
}

func newEnvelopeCache(max int, ttl time.Duration) *envelopeCache {
	return &envelopeCache{max: max, ttl: ttl, entries: map[uint64]cached{}}
}

func (c *envelopeCache) get(seq uint64, now time.Time) (*broker.StoredEnvelope, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[seq]
	if !ok || now.Sub(e.at) > c.ttl {
		return nil, false
	}
	return e.se, true
}

func (c *envelopeCache) put(se *broker.StoredEnvelope, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Drop the expired, then (still full) an arbitrary half: cheap,
		// and a miss only costs one read of the record.
		for k, e := range c.entries {
			if now.Sub(e.at) > c.ttl || len(c.entries) >= c.max/2 {
				delete(c.entries, k)
			}
		}
	}
	c.entries[se.Seq] = cached{se: se, at: now}
}
