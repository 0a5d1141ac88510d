package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// What the bus's server side (package bus) uses of the bus's own client,
// instead of the client's internals. On an agency's client these answer
// from what that client holds, and the agency's permissions refuse the
// writes among them.

// RecordedAt is the time an envelope from agency from was recorded, for
// judging its signature (see recordedAt): the tracker judges a copy as the
// recipient's side does.
func (c *Client) RecordedAt(h nats.Header, from string, stored time.Time) time.Time {
	return c.recordedAt(h, from, stored)
}

// ServedElsewhere tells an agency served by another bus of a federation.
func (c *Client) ServedElsewhere(agency string) bool { return c.servedElsewhere(agency) }

// ServingSystem is the document system serving agency, from the
// directory the client holds ("" none).
func (c *Client) ServingSystem(agency string) string {
	a, _ := c.dir.lookup(agency)
	return a.System
}

// AgencyBus is the bus serving agency as the client's directory has it
// ("" this one or none), and whether the agency is known.
func (c *Client) AgencyBus(agency string) (string, bool) {
	a, ok := c.dir.lookup(agency)
	return a.Bus, ok
}

// ReadAgency reads agency from the directory bucket, not the cache: the
// bus's own view, where a move or a deletion just made counts.
func (c *Client) ReadAgency(ctx context.Context, code string) (*Agency, error) {
	return c.readAgency(ctx, code)
}

// VerifyFresh verifies raw as Verifier().Verify does, and once more after
// reading its sender's directory entry again when the signature is refused
// as a system's that the bindings in hand do not cover: a binding made a
// moment ago counts (the receive path does the same, verifyCopy).
func (c *Client) VerifyFresh(ctx context.Context, raw []byte) (*envelope.Signed, error) {
	sg, err := c.verifier.Verify(raw)
	if errors.Is(err, signing.ErrNotServed) {
		if e, perr := envelope.Peek(raw); perr == nil && c.dir.refresh(ctx, e.From) {
			sg, err = c.verifier.Verify(raw)
		}
	}
	return sg, err
}

// CheckRoutable refuses an agency nothing may be sent to: deleted,
// suspended, or served by a bus that left the federation.
func (a *Agency) CheckRoutable() error { return a.checkRoutable() }

// MarkerStore is a bucket read and written by key.
type MarkerStore interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
}

// ReceivedMarkers is the received-markers bucket (record.ReceivedBucket)
// as the client reaches it: directly for the bus's own client, through
// the bus's system service for a system's.
func (c *Client) ReceivedMarkers() MarkerStore { return c.received }

// TrackingSource is what watchers of the tracking need of the tracker
// (bus.Tracker): the changes of pairs as they are made.
type TrackingSource interface {
	Observe(fn func(t *Tracking, prev envelope.State))
}

// Retry calls fn as the client asks the bus through a failover: again
// while it fails with a Transient error, within the caller's deadline and
// the client's patience (WithRetryPatience), each attempt with its own
// deadline.
func Retry[T any](ctx context.Context, c *Client, fn func(ctx context.Context) (T, error)) (T, error) {
	return retry(ctx, c, fn)
}

// Timeout is how long one request of the client may take (WithTimeout).
func (c *Client) Timeout() time.Duration { return c.opts.timeout }

// EnsureMailboxes creates the mailbox of every agency this bus serves
// with credentials of its own that lacks one, brings every one to this
// version's settings, and brings each system's mailbox to serve exactly
// the agencies the directory gives it (catching up on any it missed).
// Agencies cannot create or change consumers: the bus does it on start,
// so a home upgraded from a version whose clients did it themselves needs
// nothing else. Directory-only entries get no mailbox.
func (c *Client) EnsureMailboxes(ctx context.Context) error {
	bus := c.Bus()
	c.dir.mu.RLock()
	var codes []string
	bySystem := map[string][]string{}
	for code, a := range c.dir.agencies {
		switch ep := a.endpoint(bus); {
		case ep == code:
			codes = append(codes, code)
		case SystemOfActor(ep) != "":
			bySystem[SystemOfActor(ep)] = append(bySystem[SystemOfActor(ep)], code)
		}
	}
	c.dir.mu.RUnlock()
	slices.Sort(codes)
	for _, code := range codes {
		if _, err := EnsureMailbox(ctx, c.js, code); err != nil {
			return fmt.Errorf("bring mailboxes up to date: %w", err)
		}
	}
	systems, err := c.Systems(ctx)
	if err != nil {
		return fmt.Errorf("bring system mailboxes up to date: %w", err)
	}
	for _, s := range systems {
		if !s.Removed.IsZero() {
			continue
		}
		if err := c.updateSystemMailboxes(ctx, s.ID); err != nil {
			return fmt.Errorf("bring system mailboxes up to date: %w", err)
		}
		have, err := c.systemFilters(ctx, s.ID)
		if err != nil {
			return err
		}
		want := bySystem[s.ID]
		var add, remove []string
		for _, a := range want {
			if !slices.Contains(have, a) {
				add = append(add, a)
			}
		}
		for _, a := range have {
			if !slices.Contains(want, a) {
				remove = append(remove, a)
			}
		}
		if len(add) == 0 && len(remove) == 0 && len(have) > 0 {
			continue
		}
		if err := c.syncSystemMailbox(ctx, s.ID, add, remove, add); err != nil {
			return fmt.Errorf("bring system mailboxes up to date: %w", err)
		}
	}
	// Status boxes (sbox_*) of earlier versions: never read since the
	// tracker answers for statuses; a consumer each was what stopped a bus
	// at a few thousand agencies.
	return c.dropStatusBoxes(ctx)
}

// updateSystemMailboxes brings system id's mailbox and transfer consumers,
// when made by an earlier version, to this version's settings.
func (c *Client) updateSystemMailboxes(ctx context.Context, id string) error {
	for _, name := range []string{SystemDurable(id), TransferDurable(id)} {
		cons, err := c.js.Consumer(ctx, record.Stream, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mailbox of system %s: %w", id, err)
		}
		if cfg := cons.CachedInfo().Config; mailboxOutdated(cfg) {
			if _, err := updateMailbox(ctx, c.js, cfg); err != nil {
				return fmt.Errorf("mailbox of system %s: %w", id, err)
			}
		}
	}
	return nil
}

// dropStatusBoxes deletes the status-box consumers earlier versions made
// for every agency.
func (c *Client) dropStatusBoxes(ctx context.Context) error {
	st, err := c.js.Stream(ctx, record.Stream)
	if err != nil {
		return fmt.Errorf("open stream %s: %w", record.Stream, err)
	}
	lister := st.ConsumerNames(ctx)
	var names []string
	for name := range lister.Name() {
		if record.IsStatusDurable(name) {
			names = append(names, name)
		}
	}
	if err := lister.Err(); err != nil {
		return fmt.Errorf("list consumers of %s: %w", record.Stream, err)
	}
	for _, name := range names {
		if err := c.js.DeleteConsumer(ctx, record.Stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("remove status box %s of an earlier version: %w", name, err)
		}
	}
	if len(names) > 0 {
		c.opts.logger.Info("removed the status-box consumers of an earlier version", "count", len(names))
	}
	return nil
}
