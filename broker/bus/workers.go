package bus

import (
	"errors"
	"sync"
)

// workers runs a service's requests, at most n at once, and waits for
// them when the service stops. A subscription's callback that waits for a
// free worker may still be running when the subscription is gone; once
// stopped, it runs nothing more, so no request outlives the service (and
// the client it uses).
type workers struct {
	sem chan struct{}
	// perKey bounds the requests of one requester in hand at once (0: no
	// bound), so that one requester cannot hold every worker.
	perKey  int
	mu      sync.Mutex // guards stopped and busy, and wg.Add against stop
	stopped bool
	busy    map[string]int
	wg      sync.WaitGroup
}

// Why runAs did not run a request.
var (
	errWorkersStopped = errors.New("service stopped")
	errRequesterBusy  = errors.New("requester has its share of the workers")
)

// newWorkers runs n requests at once, at most perKey of one requester
// (0: no bound).
func newWorkers(n, perKey int) *workers {
	return &workers{sem: make(chan struct{}, n), perKey: perKey, busy: map[string]int{}}
}

// run runs fn in a goroutine once a worker is free (waiting meanwhile, so
// that a burst waits in the subscription's buffer); it reports false, and
// fn does not run, once the workers are stopped.
func (w *workers) run(fn func()) bool { return w.runAs("", fn) == nil }

// runAs is run for a request of requester key: errRequesterBusy, at once
// and without running fn, when key has perKey requests in hand or waiting
// for a worker already; errWorkersStopped once the workers are stopped.
func (w *workers) runAs(key string, fn func()) error {
	w.mu.Lock()
	if w.perKey > 0 && key != "" && w.busy[key] >= w.perKey {
		w.mu.Unlock()
		return errRequesterBusy
	}
	w.busy[key]++
	w.mu.Unlock()
	done := func() {
		w.mu.Lock()
		if w.busy[key]--; w.busy[key] <= 0 {
			delete(w.busy, key)
		}
		w.mu.Unlock()
	}
	w.sem <- struct{}{}
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		<-w.sem
		done()
		return errWorkersStopped
	}
	w.wg.Add(1)
	w.mu.Unlock()
	go func() {
		defer func() { <-w.sem; done(); w.wg.Done() }()
		fn()
	}()
	return nil
}

// stop runs nothing more and waits for what runs.
func (w *workers) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.wg.Wait()
}
