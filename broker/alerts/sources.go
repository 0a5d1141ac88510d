package alerts

import (
	"context"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go/jetstream"
)

// Tracking reads every tracking pair and the directory: a *broker.Client
// of the bus.
type Tracking interface {
	EachTracking(ctx context.Context, fn func(*broker.Tracking) error) error
	Agencies(ctx context.Context) ([]broker.Agency, error)
}

// System is a document system that signs for agencies.
type System struct {
	ID          string
	Name        string
	Certificate string // PEM chain, leaf first
}

// Systems lists the document systems and their certificates.
type Systems interface {
	Systems(ctx context.Context) ([]System, error)
}

// QuarantineState is the quarantine's size, and how many of its entries
// were added since a time.
type QuarantineState struct {
	Entries uint64
	Added   uint64
}

// Quarantine reports the quarantine's state: entries still there that
// were added at or after since (retried or dropped ones do not count).
type Quarantine interface {
	QuarantineState(ctx context.Context, since time.Time) (QuarantineState, error)
}

// Link is a federation link as last seen.
type Link struct {
	Peer string
	Up   bool
}

// Links lists the federation links (none on a bus on its own).
type Links interface {
	Links(ctx context.Context) ([]Link, error)
}

// Disk reports how full the store's disk is.
type Disk interface {
	Usage(ctx context.Context) (path string, used, total uint64, err error)
}

// Sources are what the rules read; a nil source turns its rules off.
type Sources struct {
	Tracking   Tracking
	Systems    Systems
	Quarantine Quarantine
	Links      Links
	Disk       Disk
}

// StreamQuarantine reads the quarantine stream's state from JetStream.
type StreamQuarantine struct{ JS jetstream.JetStream }

// QuarantineState implements Quarantine. The entries added since a time
// are counted by the server (a consumer starting at that time, its
// pending count), from the entries' own times: nothing to remember across
// restarts.
func (q StreamQuarantine) QuarantineState(ctx context.Context, since time.Time) (QuarantineState, error) {
	fail := func(err error) (QuarantineState, error) {
		return QuarantineState{}, fmt.Errorf("quarantine stream %s: %w", record.QuarantineStream, err)
	}
	s, err := q.JS.Stream(ctx, record.QuarantineStream)
	if err != nil {
		return fail(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fail(err)
	}
	st := QuarantineState{Entries: info.State.Msgs}
	if st.Entries == 0 || info.State.LastTime.Before(since) {
		return st, nil
	}
	cons, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 30 * time.Second, Description: "docaxis alerts: quarantine growth"})
	if err != nil {
		return fail(err)
	}
	ci, err := cons.Info(ctx)
	_ = s.DeleteConsumer(ctx, cons.CachedInfo().Name)
	if err != nil {
		return fail(err)
	}
	st.Added = ci.NumPending
	return st, nil
}

// DirDisk reports the disk holding a directory (the embedded store's).
type DirDisk struct{ Dir string }

// Usage implements Disk.
func (d DirDisk) Usage(_ context.Context) (string, uint64, uint64, error) {
	used, total, err := diskUsage(d.Dir)
	if err != nil {
		return d.Dir, 0, 0, fmt.Errorf("disk of %s: %w", d.Dir, err)
	}
	return d.Dir, used, total, nil
}

// LinksFunc adapts a function to Links.
type LinksFunc func(ctx context.Context) ([]Link, error)

// Links implements Links.
func (f LinksFunc) Links(ctx context.Context) ([]Link, error) { return f(ctx) }
