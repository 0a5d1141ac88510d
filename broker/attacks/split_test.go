package attacks_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// The broker/bus split gave the bus's server side an exported surface on
// broker.Client (busside.go). An agency's program links the same library:
// called with an agency's credentials, none of it may read or change what
// is not the agency's own.
func TestSplitBusSurfaceWithAgencyCredentials(t *testing.T) {
	a := newArena(t)
	id, _ := a.victimSend()
	c := a.client(attacker)

	t.Run("AnswerTracking reads no pair of the victims", func(t *testing.T) {
		for _, tc := range []struct {
			op  string
			req broker.TrackRequest
		}{
			{record.TrackOpStatus, broker.TrackRequest{ID: id}},
			{record.TrackOpTracking, broker.TrackRequest{ID: id, Recipient: victimRecipient}},
			{record.TrackOpSent, broker.TrackRequest{}},
			{record.TrackOpStatuses, broker.TrackRequest{ID: id}},
		} {
			rep, err := c.AnswerTracking(splitRefusedCtx(t), victimSender, tc.op, tc.req, 1<<20)
			if err == nil {
				t.Fatalf("%s as %s through the attacker's connection: answered %+v, want an error", tc.op, victimSender, rep)
			}
		}
	})

	t.Run("EnsureMailboxes changes no consumer", func(t *testing.T) {
		before := mailboxConfig(t, a, victimRecipient)
		if err := c.EnsureMailboxes(splitRefusedCtx(t)); err == nil {
			t.Fatal("EnsureMailboxes with an agency's credentials: no error")
		}
		if after := mailboxConfig(t, a, victimRecipient); !reflect.DeepEqual(before, after) {
			t.Fatalf("victim's mailbox changed:\nbefore %+v\nafter  %+v", before, after)
		}
	})

	t.Run("ReceivedMarkers neither reads nor writes the victim's markers", func(t *testing.T) {
		ctx := ctxT(t)
		key := record.ReceivedKey(victimRecipient, id)
		if e, err := c.ReceivedMarkers().Get(splitRefusedCtx(t), key); err == nil {
			t.Fatalf("read the victim's marker %s: %q", key, e.Value())
		}
		if _, err := c.ReceivedMarkers().Put(splitRefusedCtx(t), key, []byte(`{"at":"2026-01-01T00:00:00Z"}`)); err == nil {
			t.Fatalf("wrote the victim's marker %s", key)
		}
		kv, err := a.admin.JetStream().KeyValue(ctx, record.ReceivedBucket)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatalf("victim's marker %s after the attempt: %v, want none", key, err)
		}
	})

	t.Run("ReadAgency tells no more than LookupAgency", func(t *testing.T) {
		ctx := ctxT(t)
		got, err := c.ReadAgency(ctx, victimRecipient)
		if err != nil {
			t.Fatal(err)
		}
		want, err := c.LookupAgency(ctx, victimRecipient)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ReadAgency %+v, LookupAgency %+v", got, want)
		}
	})

	// The victim's pair is still as the tracker made it.
	if _, err := a.admin.WaitState(ctxT(t), id, victimRecipient, envelope.StateSent); err != nil {
		t.Fatal(err)
	}
}

// mailboxConfig is agency's mailbox consumer as the bus has it.
func mailboxConfig(t *testing.T, a *arena, agency string) jetstream.ConsumerConfig {
	t.Helper()
	cons, err := a.admin.JetStream().Consumer(ctxT(t), record.Stream, record.MailboxDurable(agency))
	if err != nil {
		t.Fatal(err)
	}
	return cons.CachedInfo().Config
}

// splitRefusedCtx bounds a call the server refuses: such a call waits for
// its context, so each gets a short one of its own.
func splitRefusedCtx(t *testing.T) context.Context { return bustest.Context(t, 3*time.Second) }
