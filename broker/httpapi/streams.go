package httpapi

import "sync"

// streamCounter bounds the event streams open at once per token: each
// holds a connection, a goroutine and two watchers on the bus for as long
// as the client keeps it, so one token must not open them without end.
type streamCounter struct {
	max  int
	mu   sync.Mutex
	open map[string]int // token hash -> streams open
}

func newStreamCounter(max int) *streamCounter {
	return &streamCounter{max: max, open: map[string]int{}}
}

// acquire takes a stream for key, or reports how many are open when
// none is left.
func (c *streamCounter) acquire(key string) (open int, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.open[key]; n >= c.max {
		return n, false
	}
	c.open[key]++
	return c.open[key], true
}

func (c *streamCounter) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[key] <= 1 {
		delete(c.open, key)
		return
	}
	c.open[key]--
}
