package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/signing"
)

// ReceiveAll drains agency's mailbox with c, handing every envelope to an
// application that takes it, and returns the outcomes.
func ReceiveAll(t testing.TB, c *broker.Client, agency string, opts ...broker.MailboxOption) []broker.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var outs []broker.Outcome
	opts = append(opts, broker.OnOutcome(func(o broker.Outcome) { outs = append(outs, o) }))
	mb, err := c.Mailbox(ctx, agency, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Fetch(ctx, 0, 500*time.Millisecond, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
		t.Fatal(err)
	}
	return outs
}

// WaitTracked waits until the bus's tracker has handled the record up to
// seq: what it did not make by then, it never makes.
func WaitTracked(t testing.TB, c *broker.Client, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		cons, err := c.JetStream().Consumer(ctx, record.Stream, record.TrackerDurable)
		if err != nil {
			t.Fatal(err)
		}
		info := cons.CachedInfo()
		if info.AckFloor.Stream >= seq {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("tracker did not pass #%d (ack floor #%d)", seq, info.AckFloor.Stream)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// LagTracker stops the bus's tracker and starts it again after d, as a
// tracker behind its consumer is: what is stored meanwhile is applied
// late. restarted waits for the restart (the test fails if it failed);
// call it before the test ends.
func (b *Bus) LagTracker(t testing.TB, d time.Duration) (restarted func()) {
	t.Helper()
	tracker := b.Service.Tracker
	tracker.Stop()
	done := make(chan error, 1)
	go func() {
		time.Sleep(d)
		done <- tracker.Start(context.Background())
	}()
	return func() {
		t.Helper()
		if err := <-done; err != nil {
			t.Fatalf("restart the tracker: %v", err)
		}
	}
}

// Impostors are identities for code that the bus must not take: one
// issued by a CA it does not trust, and one its own CA issued whose
// validity ended a day ago.
func (b *Bus) Impostors(t testing.TB, code string) (stranger, expired *signing.Identity) {
	t.Helper()
	foreign, err := signing.NewCA("foreign CA", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if stranger, err = foreign.Issue(code, "giả mạo", signing.IssueOptions{}); err != nil {
		t.Fatal(err)
	}
	if expired, err = b.CA.Issue(code, "cũ", signing.IssueOptions{NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	return stranger, expired
}
