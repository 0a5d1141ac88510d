package bus

import (
	"sync/atomic"
	"testing"
	"time"
)

// A request waiting for a worker when the service stops does not run: it
// would use the client after the service closed it.
func TestWorkersRunNothingAfterStop(t *testing.T) {
	w := newWorkers(1)
	release := make(chan struct{})
	if !w.run(func() { <-release }) {
		t.Fatal("the first request did not run")
	}
	var late atomic.Bool
	waiting := make(chan bool)
	go func() { waiting <- w.run(func() { late.Store(true) }) }() // waits for the one worker
	stopped := make(chan struct{})
	go func() { w.stop(); close(stopped) }()
	// stop waits for the request in hand; let it finish only once stop
	// has begun.
	for {
		w.mu.Lock()
		s := w.stopped
		w.mu.Unlock()
		if s {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	<-stopped
	if <-waiting || late.Load() {
		t.Fatal("a request ran after the workers stopped")
	}
}
