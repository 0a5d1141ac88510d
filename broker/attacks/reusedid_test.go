package attacks_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
)

// H99, a co-recipient of G22's envelope, learns its id from its own copy,
// signs an envelope of its own with that id and puts it in H14's mailbox.
// The received marker is H14's per envelope id, so before, whichever copy
// H14 handed over first shadowed the other: the other was acknowledged as
// a redelivery, unseen, and its receipt (same message id) dropped. Now the
// bus's tracking decides: G22's copy, the one the id is bound to, is
// handed over in either order; H99's is refused when it comes second.
func TestReusedIDCannotShadowTheRightfulCopy(t *testing.T) {
	for _, c := range []struct {
		name string
		// genuineFailsOnce: H14's application fails G22's copy once, so
		// H99's copy is handed over first.
		genuineFailsOnce bool
	}{
		{"ForgeryHandedOverFirst", true},
		{"ForgeryComesSecond", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newArena(t)
			ctx := ctxT(t)
			id := sentToBoth(t, a)
			if got := trackReceive(t, a.client(attacker), attacker); len(got) != 1 || got[0] != id {
				t.Fatalf("H99's mailbox: %v", got)
			}
			forged := envelope.New(attacker, []string{victimRecipient}, "Giả: công văn trước đã bị hủy")
			forged.ID = id
			nc, _ := a.raw(attacker)
			trackPublish(t, nc, record.DocSubject(victimRecipient, attacker), a.trackSeal(attacker, forged))

			var (
				mu         sync.Mutex
				handed     = map[string]int{} // sender -> times handed over
				refused    = map[string]int{}
				failedOnce bool
			)
			mb, err := a.client(victimRecipient).Mailbox(ctx, victimRecipient, broker.OnOutcome(func(o broker.Outcome) {
				mu.Lock()
				defer mu.Unlock()
				if o.Quarantined {
					refused[o.From]++
				}
			}))
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "G22's copy handed to H14's application", func() error {
				fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				defer cancel()
				_, err := mb.Fetch(fctx, 10, time.Second, func(_ context.Context, d *broker.Delivery) error {
					mu.Lock()
					defer mu.Unlock()
					if d.Envelope.From == victimSender && c.genuineFailsOnce && !failedOnce {
						failedOnce = true
						return errors.New("DMS database busy, try again")
					}
					handed[d.Envelope.From]++
					return nil
				})
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				if handed[victimSender] == 0 {
					return errors.New("not yet")
				}
				return nil
			})
			if _, err := a.admin.WaitState(ctx, id, victimRecipient, envelope.StateDelivered); err != nil {
				t.Fatalf("G22's pair for H14 after its copy was handed over: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if handed[victimSender] != 1 {
				t.Errorf("G22's copy handed over %d times", handed[victimSender])
			}
			if !c.genuineFailsOnce && (handed[attacker] != 0 || refused[attacker] != 1) {
				t.Errorf("H99's copy, second with G22's id: handed over %d times, refused %d times; want refused once", handed[attacker], refused[attacker])
			}
		})
	}
}

// H99 puts into H14's mailbox a copy claiming to be G22's envelope (G22's
// id, "from" G22), which H14 refuses with a signed invalid receipt to
// G22, as it must: the sender hears of every refused copy. That receipt
// names the bytes it refused, not G22's copy: the bus does not count it on
// G22's pair (before, the pair went "invalid" on H99's word).
func TestInvalidReceiptForOtherBytesDoesNotCount(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	id := sentToBoth(t, a)
	forged := envelope.New(victimSender, []string{victimRecipient}, "Giả danh")
	forged.ID = id
	nc, _ := a.raw(attacker)
	trackPublish(t, nc, record.DocSubject(victimRecipient, attacker), a.trackSeal(attacker, forged))

	var (
		mu         sync.Mutex
		failedOnce bool
		refused    int
		handed     int
	)
	mb, err := a.client(victimRecipient).Mailbox(ctx, victimRecipient, broker.OnOutcome(func(o broker.Outcome) {
		mu.Lock()
		defer mu.Unlock()
		if o.Quarantined {
			refused++
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "both copies handled", func() error {
		fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err := mb.Fetch(fctx, 10, time.Second, func(_ context.Context, d *broker.Delivery) error {
			mu.Lock()
			defer mu.Unlock()
			if !failedOnce {
				failedOnce = true // G22's copy comes back after the forgery
				return errors.New("DMS database busy, try again")
			}
			handed++
			return nil
		})
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if handed == 0 || refused == 0 {
			return fmt.Errorf("handed over %d, refused %d", handed, refused)
		}
		return nil
	})
	tr, err := a.admin.WaitState(ctx, id, victimRecipient, envelope.StateDelivered)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the invalid receipt for the forgery judged", func() error {
		tr, err = a.admin.Tracking(ctx, id, victimRecipient)
		if err != nil {
			return err
		}
		if len(tr.Refused) == 0 {
			return errors.New("no refused event yet")
		}
		return nil
	})
	for _, ev := range tr.History {
		if ev.State == envelope.StateInvalid {
			t.Fatalf("G22's pair counted H14's invalid receipt for H99's bytes: %+v", tr.History)
		}
	}
	if !strings.Contains(tr.Refused[0].Reason, "other bytes") {
		t.Fatalf("refused for %q", tr.Refused[0].Reason)
	}
}

// sentToBoth sends G22's envelope to H14 and H99 (who learns its id) and
// returns its id once H14's copy is tracked.
func sentToBoth(t *testing.T, a *arena) string {
	t.Helper()
	ctx := ctxT(t)
	res, err := a.client(victimSender).Send(ctx, envelope.New(victimSender, []string{victimRecipient, attacker}, "Công văn thật"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.admin.WaitState(ctx, res.ID, victimRecipient, envelope.StateSent); err != nil {
		t.Fatal(err)
	}
	return res.ID
}
