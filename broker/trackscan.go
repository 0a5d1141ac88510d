package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go/jetstream"
)

// EachTracking calls fn with every tracking pair of the bus, in no
// particular order, until fn returns an error. It reads the bucket in one
// pass (a watch of every key, deletes skipped), not a read per key, so
// reports, alerts and retention can go through a year of pairs. Only the
// bus's own client may: an agency's sees its own pairs alone.
func (c *Client) EachTracking(ctx context.Context, fn func(*Tracking) error) error {
	if c.opts.agency != "" || c.track == nil {
		return fmt.Errorf("read every tracking pair: %w: needs the bus's own client", ErrPermission)
	}
	w, err := c.track.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("read every tracking pair: %w", c.explain(err))
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("read every tracking pair: %w", errors.New("watch ended early"))
			}
			if e == nil {
				return nil // the initial values are done
			}
			t, err := decodeTracking(e)
			if err != nil {
				continue // not a pair this version knows: nothing to count
			}
			if err := fn(t); err != nil {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("read every tracking pair: %w", ctx.Err())
		}
	}
}

// DeleteTracking removes the tracking pair of (sender, id, recipient):
// retention does, once the pair's record is past keeping.
func (c *Client) DeleteTracking(ctx context.Context, sender, id, recipient string) error {
	if c.opts.agency != "" || c.track == nil {
		return fmt.Errorf("delete tracking %s for %s: %w: needs the bus's own client", id, recipient, ErrPermission)
	}
	if err := c.track.Purge(ctx, record.TrackKey(sender, id, recipient)); err != nil {
		return fmt.Errorf("delete tracking %s for %s: %w", id, recipient, err)
	}
	return nil
}
