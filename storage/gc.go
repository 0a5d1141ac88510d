package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// GCOptions configure GC.
type GCOptions struct {
	// Referenced reports whether a retained envelope refers to the object
	// under key. Required: GC never deletes an object it reports. It is
	// asked again right before each deletion, so an envelope retained
	// while GC runs still protects its attachments.
	Referenced func(key string) bool
	// OlderThan is the grace period: only objects stored longer ago may
	// go, so that attachments uploaded for an envelope not yet sent
	// survive. It must exceed the longest time between a Put and the
	// envelope that refers to it being retained.
	OlderThan time.Duration
	// DryRun finds what would be deleted and deletes nothing.
	DryRun bool
	// OnObject, if set, is called for each object GC deletes (deleted is
	// true) or, with DryRun, would delete (deleted is false).
	OnObject func(obj Object, deleted bool)
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// GCResult counts what GC saw and did.
type GCResult struct {
	Scanned      int   // objects listed
	Referenced   int   // kept: an envelope refers to them
	Recent       int   // kept: younger than OlderThan, or of unknown age
	Deleted      int   // deleted, or with DryRun to be deleted
	DeletedBytes int64 // their size
	Swept        int   // leftovers of interrupted uploads removed (see Sweeper)
}

// Sweeper is implemented by stores that stage uploads (temporary objects,
// multipart uploads) which a process killed mid-Put leaves behind, out of
// List's sight. GC calls Sweep with its grace period and dry-run flag.
type Sweeper interface {
	Sweep(ctx context.Context, olderThan time.Duration, dryRun bool) (int, error)
}

// GC deletes the objects of store that are older than opts.OlderThan and
// that no retained envelope references, then sweeps the leftovers of
// interrupted uploads if store is a Sweeper. It stops at the first error,
// returning what it did so far.
//
// A Put that finds its bytes already stored does not renew the stored
// object's ModTime; an unreferenced old object can thus be collected just
// after such a Put returned its key. Callers that run GC while sending
// should let Referenced also report the attachments of envelopes being
// composed.
func GC(ctx context.Context, store Store, opts GCOptions) (GCResult, error) {
	var res GCResult
	switch {
	case opts.Referenced == nil:
		return res, errors.New("gc: no Referenced function: refusing to delete blind")
	case opts.OlderThan <= 0:
		return res, fmt.Errorf("gc: grace period %s: want > 0, or uploads in flight are lost", opts.OlderThan)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	cutoff := now().Add(-opts.OlderThan)

	// Collect first, delete after: deleting while a backend pages through
	// its listing is not safe everywhere.
	var doomed []Object
	err := store.List(ctx, func(o Object) error {
		res.Scanned++
		switch {
		case opts.Referenced(o.Key):
			res.Referenced++
		case o.ModTime.IsZero() || !o.ModTime.Before(cutoff):
			res.Recent++
		default:
			doomed = append(doomed, o)
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("gc: %w", err)
	}
	for _, o := range doomed {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("gc: %w", err)
		}
		if opts.Referenced(o.Key) {
			res.Referenced++
			continue
		}
		if !opts.DryRun {
			if err := store.Delete(ctx, o.Key); err != nil {
				return res, fmt.Errorf("gc: %w", err)
			}
		}
		res.Deleted++
		res.DeletedBytes += o.Size
		if opts.OnObject != nil {
			opts.OnObject(o, !opts.DryRun)
		}
	}
	if sw, ok := store.(Sweeper); ok {
		n, err := sw.Sweep(ctx, opts.OlderThan, opts.DryRun)
		res.Swept = n
		if err != nil {
			return res, fmt.Errorf("gc: sweep: %w", err)
		}
	}
	return res, nil
}
