package broker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
)

// A replica of the record restarts after missing envelopes while every
// serve is down: it catches up while statuses are asked, and the record
// readers placed on it (an ordered consumer is R1, on a random peer) see
// less than the leader. Every status, asked once, is sent with the note:
// never "not found" for an envelope on record.
func TestStatusFromRecordWhileReplicaCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-node cluster")
	}
	const total = 150
	cl := bustest.StartCluster(t, 3)
	cl.AddAgency(govOffice, "Văn phòng Chính phủ")
	cl.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	admin, sender, rcpt := cl.Client(), cl.Client(govOffice), cl.Client(ngheAn)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	cl.Service.Tracker.Stop()
	follower := (cl.Leader(record.Stream) + 1) % len(cl.Nodes)
	cl.Kill(follower)
	var ids []string
	for i := range total {
		e := envelope.New(govOffice, []string{ngheAn}, fmt.Sprintf("Công văn khi một nút dừng %d", i))
		if _, err := sendUntilStored(ctx, sender, e, nil); err != nil {
			t.Fatalf("send %d with a replica down: %v", i, err)
		}
		ids = append(ids, e.ID)
	}
	cl.Restart(follower)

	// Newest first: the copies the restarted replica lacks longest.
	for i := len(ids) - 1; i >= 0; i-- {
		c, who := admin, "the bus"
		if i%5 == 0 {
			c, who = rcpt, ngheAn // through the tracking service
		}
		ds, err := c.Status(ctx, ids[i])
		if err != nil {
			t.Fatalf("status of envelope %d (%s) asked by %s while a replica catches up: %v", i, ids[i], who, err)
		}
		if ds.Note != broker.NoteTrackingBehind || len(ds.Recipients) != 1 || ds.Recipients[0].State != envelope.StateSent {
			t.Fatalf("status of envelope %d asked by %s: %+v; want sent, with the note", i, who, ds)
		}
	}
	if _, err := admin.Status(ctx, envelope.New(govOffice, []string{ngheAn}, "never sent").ID); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("status of an envelope never sent: %v, want ErrNotFound", err)
	}
}
