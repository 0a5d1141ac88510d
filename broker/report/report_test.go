package report_test

import (
	"context"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/report"
	"github.com/docaxis/docaxis/envelope"
)

const (
	govOffice = "000.00.00.G22"
	sonLa     = "000.00.00.H14"
	ngheAn    = "000.00.00.H41"
)

func ctxT(t testing.TB) context.Context { return bustest.Context(t, 60*time.Second) }

// known sends a known set of documents and moves them on:
//
//	A  G22 → H14, H41  due 2020-01-01  H14 delivered; H41 delivered, rejected
//	B  G22 → H14                       H14 delivered
//	C  H41 → G22                       not fetched
//
// Sent 3, received 4, delivered 3, rejected 1, overdue 1 (A at H14).
func known(t *testing.T) *bustest.Bus {
	t.Helper()
	bus := bustest.Start(t, bustest.WithAuth())
	for _, c := range []string{govOffice, sonLa, ngheAn} {
		bus.AddAgency(c, c)
	}
	ctx := ctxT(t)
	admin := bus.Service.Client
	send := func(from string, to []string, subject, due string) string {
		e := envelope.New(from, to, subject)
		if due != "" {
			e.Document = &envelope.Document{DueDate: due}
		}
		res, err := bus.Client(from).Send(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range to {
			if _, err := admin.WaitState(ctx, res.ID, r, envelope.StateSent); err != nil {
				t.Fatal(err)
			}
		}
		return res.ID
	}
	receive := func(as string, ids ...string) {
		mb, err := bus.Client(as).Mailbox(ctx, as)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mb.Fetch(ctx, 0, 500*time.Millisecond, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
			t.Fatalf("%s receives: %v", as, err)
		}
		for _, id := range ids {
			if _, err := admin.WaitState(ctx, id, as, envelope.StateDelivered); err != nil {
				t.Fatal(err)
			}
		}
	}
	a := send(govOffice, []string{sonLa, ngheAn}, "A", "2020-01-01")
	b := send(govOffice, []string{sonLa}, "B", "")
	send(ngheAn, []string{govOffice}, "C", "")
	receive(sonLa, a, b)
	receive(ngheAn, a)
	if _, err := bus.Client(ngheAn).Mark(ctx, ngheAn, a, envelope.StateRejected, broker.MarkOptions{Note: "Sai thẩm quyền"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.WaitState(ctx, a, ngheAn, envelope.StateRejected); err != nil {
		t.Fatal(err)
	}
	return bus
}

func TestReportFiguresOfKnownSends(t *testing.T) {
	bus := known(t)
	now := time.Now()
	from, to := now.AddDate(0, 0, -1), now.AddDate(0, 0, 1)
	counts := func(s, r, d, rej, od int) report.Counts {
		return report.Counts{Sent: s, Received: r, Delivered: d, Rejected: rej, Overdue: od}
	}
	tests := []struct {
		name string
		by   report.By
		want map[string]report.Counts
	}{
		{"whole bus", report.ByNone, map[string]report.Counts{"": counts(3, 4, 3, 1, 1)}},
		{"per agency", report.ByAgency, map[string]report.Counts{
			govOffice: counts(2, 1, 0, 0, 0),
			sonLa:     counts(0, 2, 2, 0, 1),
			ngheAn:    counts(1, 1, 1, 1, 0),
		}},
		{"per system", report.BySystem, map[string]report.Counts{"-": counts(3, 4, 3, 1, 1)}},
		{"per province", report.ByProvince, map[string]report.Counts{
			govOffice: counts(2, 1, 0, 0, 0),
			sonLa:     counts(0, 2, 2, 0, 1),
			ngheAn:    counts(1, 1, 1, 1, 0),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := report.Make(ctxT(t), bus.Service.Client, report.Options{From: from, To: to, By: tt.by, Period: report.All})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]report.Counts{}
			for _, row := range r.Rows {
				got[row.Key] = row.Counts
			}
			if len(got) != len(tt.want) {
				t.Fatalf("rows %+v, want %+v", r.Rows, tt.want)
			}
			for k, w := range tt.want {
				if got[k] != w {
					t.Errorf("row %q = %+v, want %+v", k, got[k], w)
				}
			}
			if r.Total.Counts != counts(3, 4, 3, 1, 1) {
				t.Errorf("total = %+v", r.Total.Counts)
			}
			if r.Total.P50 <= 0 || r.Total.P99 < r.Total.P50 {
				t.Errorf("delivery percentiles p50 %v p99 %v", r.Total.P50, r.Total.P99)
			}
		})
	}
	// Nothing of today falls in a range that ends yesterday.
	r, err := report.Make(ctxT(t), bus.Service.Client, report.Options{From: from.AddDate(0, 0, -5), To: from, By: report.ByAgency})
	if err != nil || len(r.Rows) != 0 || r.Total.Sent != 0 {
		t.Fatalf("range before the sends: %+v, %v", r, err)
	}
}

func TestReportOptionsRefused(t *testing.T) {
	now := time.Now()
	for _, o := range []report.Options{
		{From: now, To: now},
		{From: now, To: now.Add(-time.Hour)},
		{From: now, To: now.Add(time.Hour), By: "ministry"},
		{From: now, To: now.Add(time.Hour), Period: "week"},
	} {
		if _, err := report.Make(ctxT(t), nil, o); err == nil {
			t.Errorf("%+v: accepted", o)
		}
	}
}

// TestProvinceFollowsParents places a commune under a district under a
// province; a code the directory does not know falls to its level-1 unit.
func TestProvinceFollowsParents(t *testing.T) {
	dir := []broker.Agency{
		{Code: ngheAn, Name: "UBND tỉnh Nghệ An"},
		{Code: "000.01.41.H41", Parent: ngheAn},
		{Code: "000.01.01.H41", Parent: "000.01.41.H41"},
	}
	at := time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)
	b := report.NewBuilder(dir, report.Options{From: at.AddDate(0, -1, 0), To: at.AddDate(0, 1, 0), By: report.ByProvince, Period: report.Month})
	pair := func(id, from, to string) *broker.Tracking {
		return &broker.Tracking{Envelope: id, Sender: from, Recipient: to, History: []broker.Event{
			{State: envelope.StateSent, At: at}, {State: envelope.StateDelivered, At: at.Add(90 * time.Second)}}}
	}
	b.Add(pair("e1", "000.01.01.H41", govOffice))
	b.Add(pair("e2", "000.02.03.H41", govOffice)) // not in the directory
	r := b.Report()
	var h41 *report.Row
	for i := range r.Rows {
		if r.Rows[i].Key == ngheAn {
			h41 = &r.Rows[i]
		}
	}
	if h41 == nil || h41.Sent != 2 || h41.Name != "UBND tỉnh Nghệ An" || h41.Period != "2025-03" {
		t.Fatalf("rows %+v", r.Rows)
	}
	if r.Total.P50 != 90 {
		t.Fatalf("p50 = %v, want 90", r.Total.P50)
	}
}
