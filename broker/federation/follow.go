package federation

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// following tells follow what to do besides applying entries.
type following struct {
	// loaded runs once, after the entries present when the watch began.
	loaded func()
	// every, when set, runs tick at that interval, between entries.
	every time.Duration
	tick  func()
}

// follow applies w's entries with apply, one at a time, in a goroutine
// that runs until the service stops, and returns once the entries present
// when the watch began are applied: the caller starts what depends on
// them. what names the watch in the error when ctx ends first.
func (s *Service) follow(ctx context.Context, what string, w jetstream.KeyWatcher, apply func(jetstream.KeyValueEntry), f following) error {
	ready := make(chan struct{})
	var tick <-chan time.Time
	var ticker *time.Ticker
	if f.every > 0 {
		ticker = time.NewTicker(f.every)
		tick = ticker.C
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer w.Stop()
		if ticker != nil {
			defer ticker.Stop()
		}
		initial := true
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-tick:
				f.tick()
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					if initial {
						initial = false
						if f.loaded != nil {
							f.loaded()
						}
						close(ready)
					}
					continue
				}
				apply(e)
			}
		}
	}()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("load %s: %w", what, ctx.Err())
	}
}
