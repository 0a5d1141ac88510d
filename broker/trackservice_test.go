package broker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
)

// An agency reads its tracking through the bus's service: its own pairs,
// page by page, and its events, nothing else.
func TestAgencyTrackingThroughTheService(t *testing.T) {
	defer broker.SetTrackListLimit(2)()
	bus := securedBus(t)
	ctx := ctxT(t)
	g22, h41, h14 := bus.Client(govOffice), bus.Client(ngheAn), bus.Client(sonLa)

	// No deadline: a watch runs as long as its caller wants.
	watch, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ids []string
	for i := range 3 {
		res, err := g22.Send(ctx, envelope.New(govOffice, []string{ngheAn, sonLa}, "Văn bản "+string(rune('A'+i))))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	for _, id := range ids {
		waitState(t, g22, id, ngheAn, envelope.StateSent)
		waitState(t, g22, id, sonLa, envelope.StateSent)
	}
	updates, err := h41.Watch(watch, ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	// Lists page (two entries a page here) and hold only one's own.
	sent, err := g22.Sent(ctx, govOffice)
	if err != nil || len(sent) != 6 {
		t.Fatalf("sender's list: %d entries, %v", len(sent), err)
	}
	got, err := h41.Received(ctx, ngheAn)
	if err != nil || len(got) != 3 {
		t.Fatalf("recipient's list: %d entries, %v", len(got), err)
	}
	for _, tr := range got {
		if tr.Recipient != ngheAn {
			t.Fatalf("recipient's list holds %+v", tr)
		}
	}
	// On the wire: at most the page asked for, and the cursor of the next.
	after, pages := uint64(0), 0
	for {
		msg, err := g22.Conn().Request(record.TrackServiceSubject(govOffice, "sent"), []byte(`{"limit":4,"after":`+strconv.FormatUint(after, 10)+`}`), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Entries []broker.Tracking `json:"entries"`
			Next    uint64            `json:"next"`
		}
		if err := json.Unmarshal(msg.Data, &page); err != nil || len(page.Entries) > 4 {
			t.Fatalf("page of %d entries: %s", len(page.Entries), msg.Data)
		}
		pages++
		if page.Next == 0 {
			break
		}
		after = page.Next
	}
	if pages != 2 {
		t.Fatalf("6 entries in %d pages of 4", pages)
	}
	if none, err := h41.Sent(ctx, ngheAn); err != nil || len(none) != 0 {
		t.Fatalf("H41 sent nothing: %+v, %v", none, err)
	}
	if _, err := h41.Sent(ctx, govOffice); !errors.Is(err, broker.ErrPermission) {
		t.Fatalf("listing another agency's: %v", err)
	}
	if _, err := h41.Watch(ctx, govOffice); !errors.Is(err, broker.ErrPermission) {
		t.Fatalf("watching another agency's: %v", err)
	}

	// Views: the sender all pairs, a recipient its own.
	ds, err := g22.Status(ctx, ids[0])
	if err != nil || len(ds.Recipients) != 2 || ds.Sender != govOffice {
		t.Fatalf("sender's view: %+v, %v", ds, err)
	}
	ds, err = h41.Status(ctx, ids[0])
	if err != nil || len(ds.Recipients) != 1 || ds.Recipients[0].Recipient != ngheAn || ds.Sender != govOffice {
		t.Fatalf("recipient's view: %+v, %v", ds, err)
	}
	_, errOther := h41.Tracking(ctx, ids[0], sonLa)
	_, errNone := h41.Tracking(ctx, envelope.NewID(), sonLa)
	if !errors.Is(errOther, broker.ErrNotFound) || !errors.Is(errNone, broker.ErrNotFound) {
		t.Fatalf("another's pair: %v; no such envelope: %v", errOther, errNone)
	}

	// The snapshot first, then the events.
	snapshot := map[string]bool{}
	for len(snapshot) < 3 {
		select {
		case tr := <-updates:
			if tr.Recipient != ngheAn {
				t.Fatalf("watch shows %+v", tr)
			}
			snapshot[tr.Envelope] = true
		case <-ctx.Done():
			t.Fatalf("snapshot: %v", snapshot)
		}
	}
	if outs := receiveAll(t, h41, ngheAn); len(outs) != 3 {
		t.Fatalf("received %+v", outs)
	}
	if _, err := h41.Mark(ctx, ngheAn, ids[1], envelope.StateAccepted, broker.MarkOptions{}); err != nil {
		t.Fatal(err)
	}
	if tr := waitState(t, h41, ids[1], ngheAn, envelope.StateAccepted); tr.Sender != govOffice {
		t.Fatalf("accepted: %+v", tr)
	}
	for {
		select {
		case tr := <-updates:
			if tr.Recipient != ngheAn {
				t.Fatalf("watch shows %+v", tr)
			}
			if tr.Envelope == ids[1] && tr.State == envelope.StateAccepted {
				goto statuses
			}
		case <-ctx.Done():
			t.Fatal("the acceptance did not come as an event")
		}
	}
statuses:
	// The signed statuses, verified by the agency itself.
	mine, err := h41.Statuses(ctx, ids[1])
	if err != nil || len(mine) != 2 {
		t.Fatalf("recipient's statuses: %d, %v", len(mine), err)
	}
	all, err := g22.Statuses(ctx, ids[1])
	if err != nil || len(all) != 2 {
		t.Fatalf("sender's statuses: %d, %v", len(all), err)
	}
	if _, err := h14.Statuses(ctx, ids[1]); err != nil {
		t.Fatalf("Sơn La's statuses (none yet): %v", err)
	}
}

// Attachment access comes from the tracker a moment after the copy is
// stored; a recipient fetching meanwhile waits for it instead of refusing
// a good envelope.
func TestMailboxWaitsForAttachmentAccess(t *testing.T) {
	bus := securedBus(t)
	ctx := ctxT(t)
	admin := bus.Client()
	secret := "Phụ lục đến sau"
	res, err := bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Quyền đọc đến sau"),
		broker.File{Name: "pl.txt", Reader: strings.NewReader(secret), Size: int64(len(secret))})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, admin, res.ID, ngheAn, envelope.StateSent)
	// The tracker not there yet, as far as the recipient can tell.
	sum := sha256.Sum256([]byte(secret))
	key := record.FileRefKey(hex.EncodeToString(sum[:]), ngheAn)
	refs, err := admin.JetStream().KeyValue(ctx, record.FileRefsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := refs.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	outs := receiveAll(t, bus.Client(ngheAn), ngheAn)
	if len(outs) != 1 || !outs[0].Retry || outs[0].Quarantined {
		t.Fatalf("while access is missing: %+v", outs)
	}
	if _, err := refs.Put(ctx, key, []byte(res.ID)); err != nil {
		t.Fatal(err)
	}
	mb, err := bus.Client(ngheAn).Mailbox(ctx, ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	if _, err := mb.Fetch(ctx, 1, 10*time.Second, func(context.Context, *broker.Delivery) error { got++; return nil }); err != nil || got != 1 {
		t.Fatalf("after access came: %d handed, %v", got, err)
	}
	waitState(t, admin, res.ID, ngheAn, envelope.StateDelivered)
}
