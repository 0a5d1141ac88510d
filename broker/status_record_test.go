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

// With the tracker stopped (every `serve` down, or far behind), an
// envelope on record has the status sent, with a note, for everyone who
// may see it, and stays not found for everyone else; once the tracker is
// back the note goes.
func TestStatusFromRecordWhileTrackerStopped(t *testing.T) {
	const other = "000.00.00.H99"
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	bus.AddAgency(sonLa, "UBND tỉnh Sơn La")
	bus.AddAgency(other, "UBND tỉnh khác")
	admin := bus.Client()
	sender, rcpt, stranger := bus.Client(govOffice), bus.Client(ngheAn), bus.Client(other)
	ctx := ctxT(t)

	bus.Service.Tracker.Stop()
	e := envelope.New(govOffice, []string{ngheAn, sonLa}, "Công văn gửi khi bộ theo dõi dừng")
	if _, err := sender.Send(ctx, e); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		c          *broker.Client
		recipients []string
	}{
		{"bus", admin, []string{sonLa, ngheAn}},
		{"sender", sender, []string{sonLa, ngheAn}},
		{"recipient", rcpt, []string{ngheAn}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := tc.c.Status(ctx, e.ID)
			if err != nil {
				t.Fatalf("status of an envelope on record: %v", err)
			}
			if ds.Note != broker.NoteTrackingBehind || ds.Sender != govOffice || ds.Subject != e.Subject {
				t.Errorf("status = %+v, want sender %s, subject %q and the note", ds, govOffice, e.Subject)
			}
			var got []string
			for _, r := range ds.Recipients {
				got = append(got, r.Recipient)
				if r.State != envelope.StateSent || r.Seq == 0 || r.Digest == "" {
					t.Errorf("recipient %s: state %s, seq %d, digest %q; want sent from the record", r.Recipient, r.State, r.Seq, r.Digest)
				}
			}
			if len(got) != len(tc.recipients) || (len(got) == 2 && (got[0] != tc.recipients[0] || got[1] != tc.recipients[1])) || got[0] != tc.recipients[0] {
				t.Errorf("recipients %v, want %v", got, tc.recipients)
			}
		})
	}
	if _, err := stranger.Status(ctx, e.ID); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("status asked by an agency that is neither sender nor recipient: %v, want ErrNotFound", err)
	}
	if _, err := admin.Status(ctx, envelope.New(govOffice, []string{ngheAn}, "never sent").ID); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("status of an envelope never sent: %v, want ErrNotFound", err)
	}

	if err := bus.Service.Tracker.Start(ctx); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := admin.WaitState(wctx, e.ID, ngheAn, envelope.StateSent); err != nil {
		t.Fatal(err)
	}
	ds, err := admin.Status(ctx, e.ID)
	if err != nil || ds.Note != "" {
		t.Fatalf("status once tracked: %+v, %v; want no note", ds, err)
	}
}

// A tracking read that answers "not found" for a tracked envelope (a
// direct get of a replica catching up does) is not the last word: the
// binding and the pairs are read again through their leaders, and the
// tracked status comes back, without the note. An envelope never sent,
// or not the viewer's, stays not found.
func TestStatusNotFoundConfirmedThroughLeaders(t *testing.T) {
	const other = "000.00.00.H99"
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	bus.AddAgency(sonLa, "UBND tỉnh Sơn La")
	bus.AddAgency(other, "UBND tỉnh khác")
	admin, sender := bus.Client(), bus.Client(govOffice)
	ctx := ctxT(t)

	e := envelope.New(govOffice, []string{ngheAn, sonLa}, "Công văn đã theo dõi")
	if _, err := sender.Send(ctx, e); err != nil {
		t.Fatal(err)
	}
	st, err := admin.JetStream().Stream(ctx, record.Stream)
	if err != nil {
		t.Fatal(err)
	}
	waitTracked(t, admin, st.CachedInfo().State.LastSeq)

	for _, tc := range []struct {
		viewer, role string
		recipients   []string
	}{
		{"", "sender", []string{sonLa, ngheAn}},
		{govOffice, "sender", []string{sonLa, ngheAn}},
		{ngheAn, "recipient", []string{ngheAn}},
	} {
		ds, role, err := admin.StatusOrRecord(ctx, e.ID, tc.viewer)
		if err != nil {
			t.Fatalf("viewer %q: %v", tc.viewer, err)
		}
		var got []string
		for _, r := range ds.Recipients {
			got = append(got, r.Recipient)
		}
		if role != tc.role || ds.Note != "" || ds.Sender != govOffice || ds.Subject != e.Subject || fmt.Sprint(got) != fmt.Sprint(tc.recipients) {
			t.Errorf("viewer %q: role %s, %+v; want %s of %v, tracked (no note)", tc.viewer, role, ds, tc.role, tc.recipients)
		}
	}
	if _, _, err := admin.StatusOrRecord(ctx, e.ID, other); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("asked by an agency that is neither sender nor recipient: %v, want ErrNotFound", err)
	}
	if _, _, err := admin.StatusOrRecord(ctx, envelope.New(govOffice, []string{ngheAn}, "never sent").ID, ""); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("an envelope never sent: %v, want ErrNotFound", err)
	}
}
