package metrics_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/metrics"
	"github.com/docaxis/docaxis/broker/record"
)

// An agency with its own NATS credentials may publish a copy to any
// recipient code, and the bus quarantines in that code's box what goes
// over the publish rate. Codes no directory holds must not become label
// values of /metrics: the agency would choose how many series every
// scrape carries and Prometheus keeps (one per made-up recipient).
func TestMetricsLabelsOnlyAgenciesOfTheDirectory(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	m := metrics.New(bus.Service, bustest.Logger())
	const attacker = "000.00.00.H99"
	bus.AddAgency(attacker, "Cơ quan thử tấn công")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := broker.DefaultLimits
	l.PublishRate = 1
	if err := bus.Service.Client.SetLimits(ctx, l); err != nil {
		t.Fatal(err)
	}
	_, js := bus.AgencyConnect(t, attacker)
	const copies = 20
	made := make([]string, copies)
	for i := range made {
		made[i] = fmt.Sprintf("999.99.%02d.Z99", i)
		if _, err := js.Publish(ctx, record.DocSubject(made[i], attacker), []byte("x")); err != nil {
			t.Fatalf("publish to %s: %v", made[i], err)
		}
	}
	// Over a rate of 1 (burst 2), most of them are quarantined.
	bustest.Eventually(t, time.Minute, "copies over the rate quarantined", func() error {
		q, err := bus.Service.Client.QuarantineList(ctx, "")
		if err != nil {
			return err
		}
		if len(q) < copies-3 {
			return fmt.Errorf("%d quarantined", len(q))
		}
		return nil
	})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var labelled []string
	for _, code := range made {
		if strings.Contains(string(body), `agency="`+code+`"`) {
			labelled = append(labelled, code)
		}
	}
	if !strings.Contains(string(body), `docaxis_quarantine_messages{agency="unregistered"}`) {
		t.Errorf("/metrics does not count what is quarantined for unregistered codes:\n%s", body)
	}
	if len(labelled) > 0 {
		t.Errorf("/metrics labels %d recipient codes %s made up and no directory holds: %v", len(labelled), attacker, labelled)
	}
}
