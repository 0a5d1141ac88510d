package audit

import (
	"sync"

	"github.com/docaxis/docaxis/envelope"
)

// A document is signed once and stored once per recipient: the copies are
// the same bytes, next to each other in the stream. openCache lets a
// replay check that signature once for all the copies (the trust checks,
// which depend on each copy's recorded time, still run per copy). The
// first worker to meet the bytes verifies them; one meeting them at the
// same time waits for its answer instead of verifying again.
type openCache struct {
	mu    sync.Mutex
	m     map[string]*openEntry
	order []string // FIFO: copies are adjacent, a short memory suffices
	max   int
}

type openEntry struct {
	done chan struct{}
	s    *envelope.Signed
	err  error
}

func newOpenCache(max int) *openCache {
	return &openCache{m: make(map[string]*openEntry, max), max: max}
}

// open returns envelope.Open(raw), from the cache when the same bytes
// (digest is their SHA-256) were opened recently.
func (c *openCache) open(digest string, raw []byte) (*envelope.Signed, error) {
	if c == nil {
		return envelope.Open(raw)
	}
	c.mu.Lock()
	if e, ok := c.m[digest]; ok {
		c.mu.Unlock()
		<-e.done
		return e.s, e.err
	}
	e := &openEntry{done: make(chan struct{})}
	c.m[digest] = e
	c.order = append(c.order, digest)
	if len(c.order) > c.max {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	c.mu.Unlock()
	e.s, e.err = envelope.Open(raw)
	close(e.done)
	return e.s, e.err
}
