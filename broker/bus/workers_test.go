package bus

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// A request waiting for a worker when the service stops does not run: it
// would use the client after the service closed it.
func TestWorkersRunNothingAfterStop(t *testing.T) {
	w := newWorkers(1, 0)
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

// One requester holds at most its share of the workers: past it, its
// requests are refused at once, while another's still run; a request
// that ends gives its place back.
func TestWorkersPerRequester(t *testing.T) {
	w := newWorkers(4, 2)
	defer w.stop()
	release := make(chan struct{})
	for i := range 2 {
		if err := w.runAs("H99", func() { <-release }); err != nil {
			t.Fatalf("H99's request %d: %v", i, err)
		}
	}
	if err := w.runAs("H99", func() { t.Error("H99's third request ran") }); !errors.Is(err, errRequesterBusy) {
		t.Fatalf("H99's third request: %v", err)
	}
	ran := make(chan struct{})
	if err := w.runAs("H14", func() { close(ran) }); err != nil {
		t.Fatalf("H14's request: %v", err)
	}
	<-ran
	close(release)
	w.wg.Wait()
	again := make(chan struct{})
	if err := w.runAs("H99", func() { close(again) }); err != nil {
		t.Fatalf("H99's request once the others ended: %v", err)
	}
	<-again
}
