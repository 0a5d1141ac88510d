package bus

import "sync"

// workers runs a service's requests, at most n at once, and waits for
// them when the service stops. A subscription's callback that waits for a
// free worker may still be running when the subscription is gone; once
// stopped, it runs nothing more, so no request outlives the service (and
// the client it uses).
type workers struct {
	sem     chan struct{}
	mu      sync.Mutex // guards stopped, and wg.Add against stop
	stopped bool
	wg      sync.WaitGroup
}

func newWorkers(n int) *workers { return &workers{sem: make(chan struct{}, n)} }

// run runs fn in a goroutine once a worker is free (waiting meanwhile, so
// that a burst waits in the subscription's buffer); it reports false, and
// fn does not run, once the workers are stopped.
func (w *workers) run(fn func()) bool {
	w.sem <- struct{}{}
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		<-w.sem
		return false
	}
	w.wg.Add(1)
	w.mu.Unlock()
	go func() {
		defer func() { <-w.sem; w.wg.Done() }()
		fn()
	}()
	return true
}

// stop runs nothing more and waits for what runs.
func (w *workers) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.wg.Wait()
}
