package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/metrics"
	"github.com/docaxis/docaxis/envelope"
)

func TestMetricsFollowTheRecord(t *testing.T) {
	bus := bustest.Start(t)
	m := metrics.New(bus.Service, bustest.Logger())
	bus.AddAgency("000.00.00.G22", "Văn phòng Chính phủ")
	bus.AddAgency("000.00.00.H41", "UBND tỉnh Nghệ An")
	bus.AddAgency("000.00.00.H14", "UBND tỉnh Sơn La")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := bus.Client()
	res, err := c.Send(ctx, envelope.New("000.00.00.G22", []string{"000.00.00.H41", "000.00.00.H14"}, "Đo đếm"))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := c.Mailbox(ctx, "000.00.00.H41")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Fetch(ctx, 1, time.Second, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitState(ctx, res.ID, "000.00.00.H41", envelope.StateDelivered); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	wants := []string{
		`docaxis_envelopes_sent_total{sender="000.00.00.G22"} 2`,
		`docaxis_envelopes_delivered_total{recipient="000.00.00.H41"} 1`,
		`docaxis_delivery_latency_seconds_count 1`,
		`docaxis_mailbox_lag{agency="000.00.00.H14"} 1`,
		`docaxis_mailbox_lag{agency="000.00.00.H41"} 0`,
		`docaxis_quarantine_messages{agency="000.00.00.H41"} 0`,
		`docaxis_statuses_total{state="delivered"} 1`,
	}
	// The tracker counts a change right after it wrote it, so a reader of
	// the tracking may be a moment ahead of the counters.
	var text string
	for try := 0; try < 50; try++ {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(body)
		missing := false
		for _, want := range wants {
			missing = missing || !strings.Contains(text, want)
		}
		if !missing {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}
