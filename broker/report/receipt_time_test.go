package report_test

import (
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/report"
	"github.com/docaxis/docaxis/envelope"
)

// TestDeliveryTimeIsNotTheRecipientsClaim: a recipient's document system
// signs its receipt with a created time of its choosing (up to a day
// back is accepted) and publishes it itself. The report's delivery time
// is the ministry's measure of that recipient: it must count from when
// the bus recorded the receipt, not from the time the receipt claims,
// which here is before the document was even sent.
func TestDeliveryTimeIsNotTheRecipientsClaim(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, govOffice)
	rcpt := bus.AddAgency(sonLa, sonLa)
	ctx := ctxT(t)
	admin := bus.Service.Client

	e := envelope.New(govOffice, []string{sonLa}, "Công văn")
	res, err := bus.Client(govOffice).Send(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := admin.WaitState(ctx, res.ID, sonLa, envelope.StateSent)
	if err != nil {
		t.Fatal(err)
	}

	// The recipient answers with a receipt dated half an hour back (the
	// bus accepts up to a day; the test CA is only an hour old).
	st := envelope.NewStatus(sonLa, govOffice, res.ID, envelope.StateDelivered)
	st.Created = time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Millisecond)
	st.Status.Digest = tr.Digest
	raw, err := rcpt.Seal(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Client(sonLa).PublishStatus(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.WaitState(ctx, res.ID, sonLa, envelope.StateDelivered); err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	r, err := report.Make(ctx, admin, report.Options{From: now.AddDate(0, 0, -2), To: now.AddDate(0, 0, 1), By: report.ByAgency, Period: report.All})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range r.Rows {
		if row.Key == sonLa && row.Delivered == 1 {
			if row.P50 < 0 {
				t.Fatalf("%s's delivery time is %v s: the receipt's claimed time was counted, not when the bus recorded it", sonLa, row.P50)
			}
			return
		}
	}
	t.Fatalf("no row of %s with one delivery: %+v", sonLa, r.Rows)
}
