package bus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
)

// The tracking service refuses what is not a well-formed request.
func FuzzDecodeTrackRequest(f *testing.F) {
	f.Add("axis.svc.track.000_00_00_G22.status", []byte(`{"id":"0190c5c4-8a5e-7cc1-b6a6-0d7c3a3f6f10"}`))
	f.Add("axis.svc.track.000_00_00_G22.sent", []byte(`{"after":12,"limit":100}`))
	f.Add("axis.svc.track.000_00_00_G22.tracking", []byte(`{"id":"0190c5c4-8a5e-7cc1-b6a6-0d7c3a3f6f10","recipient":"000.00.00.H14"}`))
	f.Add("axis.svc.track.*.ping", []byte(`{}`))
	f.Add("axis.svc.track.000_00_00_G22.received", []byte(`{"limit":-1}{}`))
	f.Add("axis.svc.track.000_00_00_G22.copy", []byte(`{"id":"0190c5c4-8a5e-7cc1-b6a6-0d7c3a3f6f10","recipient":"000.00.00.H14","seq":7}`))
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		agency, op, err := bus.DecodeTrackRequest(subject, data)
		if err != nil {
			if !errors.Is(err, broker.ErrTrackRequest) {
				t.Fatalf("error %v does not wrap ErrTrackRequest", err)
			}
			return
		}
		if record.TrackServiceSubject(agency, op) != subject {
			t.Fatalf("accepted %q as agency %q op %q", subject, agency, op)
		}
		if len(data) > 1<<10 {
			t.Fatalf("accepted a %d-byte request", len(data))
		}
	})
}

func TestDecodeTrackRequest(t *testing.T) {
	id := envelope.NewID()
	tests := []struct {
		subject, body string
		ok            bool
	}{
		{"axis.svc.track.000_00_00_G22.ping", ``, true},
		{"axis.svc.track.000_00_00_G22.status", `{"id":"` + id + `"}`, true},
		{"axis.svc.track.000_00_00_G22.sent", `{"after":3,"limit":1000}`, true},
		{"axis.svc.track.000_00_00_G22.tracking", `{"id":"` + id + `","recipient":"000.00.00.H14"}`, true},
		{"axis.svc.track.000_00_00_G22.status", `{"id":"not-an-id"}`, false},
		{"axis.svc.track.000_00_00_G22.status", `{"id":"` + id + `","extra":1}`, false},
		{"axis.svc.track.000_00_00_G22.sent", `{"limit":1001}`, false},
		{"axis.svc.track.000_00_00_G22.sent", `{"limit":-1}`, false},
		{"axis.svc.track.000_00_00_G22.sent", `{} {}`, false},
		{"axis.svc.track.000_00_00_G22.tracking", `{"id":"` + id + `","recipient":"*"}`, false},
		{"axis.svc.track.000_00_00_G22.tracking", `{"id":"` + id + `"}`, false},
		{"axis.svc.track.000_00_00_G22.delete", `{}`, false},
		{"axis.svc.track.000_00_00_G22.sent.x", `{}`, false},
		{"axis.svc.track.*.sent", `{}`, false},
		{"axis.svc.track.000.00.00.G22.sent", `{}`, false},
		{"axis.svc.files.000_00_00_G22.sent", `{}`, false},
		{"axis.svc.track.000_00_00_G22.sent", `{"after":1,"pad":"` + strings.Repeat("x", 2000) + `"}`, false},
	}
	for _, tt := range tests {
		_, _, err := bus.DecodeTrackRequest(tt.subject, []byte(tt.body))
		if (err == nil) != tt.ok {
			t.Errorf("%s %s: %v", tt.subject, tt.body, err)
		}
	}
}

// With tracking events published only where someone subscribes (serve's
// embedded server, and bustest's), a watcher on its own credentials still
// gets every change, and the server's interest follows its subscription.
func TestTrackingEventsOnlyWhereWatched(t *testing.T) {
	b := bustest.Start(t, bustest.WithAuth())
	b.AddAgency(govOffice, "Văn phòng Chính phủ")
	b.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	nc, _ := b.Connect(t)
	interest, err := b.Server.Interest(nc)
	if err != nil {
		t.Fatal(err)
	}
	senderEvents, recipientEvents := record.TrackEventSubject(govOffice), record.TrackEventSubject(ngheAn)
	if interest(senderEvents) {
		t.Fatalf("interest in %s before anyone watches", senderEvents)
	}
	ctx := ctxT(t)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	sender := b.Client(govOffice)
	events, err := sender.Watch(wctx, govOffice)
	if err != nil {
		t.Fatal(err)
	}
	if !interest(senderEvents) || interest(recipientEvents) {
		t.Fatalf("interest while %s watches: %v for it, %v for %s", govOffice, interest(senderEvents), interest(recipientEvents), ngheAn)
	}
	res, err := sender.Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Về việc theo dõi văn bản"))
	if err != nil {
		t.Fatal(err)
	}
	receiveAll(t, b.Client(ngheAn), ngheAn)
	for tr := range events {
		if tr.Envelope == res.ID && tr.State == envelope.StateDelivered {
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("the watcher did not see %s delivered", res.ID)
	}
	stop()
	for range events {
	}
	for interest(senderEvents) {
		if ctx.Err() != nil {
			t.Fatalf("interest in %s after the watch ended", senderEvents)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
