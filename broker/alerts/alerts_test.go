package alerts_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/alerts"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const (
	govOffice = "000.00.00.G22"
	sonLa     = "000.00.00.H14"
	shortCert = "000.00.00.H41"
)

func ctxT(t testing.TB) context.Context { return bustest.Context(t, 60*time.Second) }

// clock is a clock the test moves forward.
type clock struct{ now atomic.Pointer[time.Time] }

func newClock() *clock {
	c := &clock{}
	now := time.Now()
	c.now.Store(&now)
	return c
}
func (c *clock) Now() time.Time { return *c.now.Load() }
func (c *clock) advance(d time.Duration) {
	n := c.Now().Add(d)
	c.now.Store(&n)
}

// receiver is a real webhook receiver: its first request gets no answer
// until the sender's timeout, its second a 500, the others a 200; the
// events of those are kept in order.
type receiver struct {
	*httptest.Server
	requests atomic.Int32
	mu       sync.Mutex
	events   []alerts.Event
	read     int // events next has returned
	got      chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan struct{}, 64)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.requests.Add(1)
		b, _ := io.ReadAll(req.Body) // read first: then the server sees the sender hang up
		switch n {
		case 1:
			<-req.Context().Done() // times out at the sender
			return
		case 2:
			http.Error(w, "receiver broken", http.StatusInternalServerError)
			return
		}
		var e alerts.Event
		if req.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &e) != nil {
			http.Error(w, "not an alert event", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.events = append(r.events, e)
		r.mu.Unlock()
		r.got <- struct{}{}
	}))
	t.Cleanup(r.Close)
	return r
}

// next waits for the next event the receiver took, in the order it took
// them: one check may send two.
func (r *receiver) next(t *testing.T) alerts.Event {
	t.Helper()
	deadline := ctxT(t)
	for {
		r.mu.Lock()
		if r.read < len(r.events) {
			e := r.events[r.read]
			r.read++
			r.mu.Unlock()
			return e
		}
		r.mu.Unlock()
		select {
		case <-r.got:
		case <-deadline.Done():
			t.Fatal("webhook received nothing")
		}
	}
}

func check(t *testing.T, m *alerts.Manager) []alerts.Event {
	t.Helper()
	ev, err := m.Check(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func only(t *testing.T, ev []alerts.Event, typ string, rule alerts.Rule, subject string) alerts.Alert {
	t.Helper()
	var match []alerts.Event
	for _, e := range ev {
		if e.Alert.Rule == rule {
			match = append(match, e)
		}
	}
	if len(match) != 1 || match[0].Type != typ || match[0].Alert.Subject != subject {
		t.Fatalf("events of %s = %+v, want one %s for %s", rule, ev, typ, subject)
	}
	return match[0].Alert
}

// TestDocumentAlertsRaisedRepeatedResolved moves the clock past the
// thresholds of a real bus: a document not delivered, then not answered,
// and a certificate expiring; each alert raised once, repeated on its
// schedule, resolved when the recipient acts; the webhook, which first
// times out and then answers 500, gets every event in order.
func TestDocumentAlertsRaisedRepeatedResolved(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(sonLa, "UBND tỉnh Sơn La")
	id, err := bus.CA.Issue(shortCert, "UBND tỉnh Nghệ An", signing.IssueOptions{Validity: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	bus.Register(id, false)
	ctx := ctxT(t)
	admin := bus.Service.Client
	res, err := bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{sonLa}, "Báo cáo tháng"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.WaitState(ctx, res.ID, sonLa, envelope.StateSent); err != nil {
		t.Fatal(err)
	}

	hook := newReceiver(t)
	clk := newClock()
	m, err := alerts.New(ctx, admin.JetStream(), alerts.Config{
		Now:     clk.Now,
		Keep:    365 * 24 * time.Hour,
		Webhook: alerts.WebhookConfig{URL: hook.URL, Timeout: 200 * time.Millisecond, Backoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond},
	}, alerts.Sources{Tracking: admin}, alerts.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)

	// Now: the certificate of 30 days is within 60.
	cert := only(t, check(t, m), alerts.EventRaised, alerts.RuleCertExpiring, "agency:"+shortCert)
	if cert.Severity != alerts.Warning || !strings.Contains(cert.Summary, "expires in") {
		t.Fatalf("certificate alert %+v", cert)
	}
	if e := hook.next(t); e.Type != alerts.EventRaised || e.Alert.ID != cert.ID || hook.requests.Load() != 3 {
		t.Fatalf("webhook got %+v after %d requests, want the raised alert on the third", e, hook.requests.Load())
	}

	clk.advance(25 * time.Hour)
	nd := only(t, check(t, m), alerts.EventRaised, alerts.RuleNotDelivered, sonLa)
	if nd.Value != 1 || !strings.Contains(nd.Summary, res.ID) {
		t.Fatalf("not delivered alert %+v", nd)
	}
	if e := hook.next(t); e.Type != alerts.EventRaised || e.Alert.Rule != alerts.RuleNotDelivered {
		t.Fatalf("webhook got %+v", e)
	}
	if n := len(series(t, m, "docaxis_alert_firing")); n != 2 {
		t.Fatalf("docaxis_alert_firing has %d series, want 2", n)
	}

	clk.advance(time.Hour) // within the repeat interval: nothing
	if ev := check(t, m); len(ev) != 0 {
		t.Fatalf("an hour later: %+v", ev)
	}
	clk.advance(4 * time.Hour)
	ev := check(t, m)
	only(t, ev, alerts.EventRepeated, alerts.RuleNotDelivered, sonLa)
	only(t, ev, alerts.EventRepeated, alerts.RuleCertExpiring, "agency:"+shortCert)

	// The recipient fetches it: delivered, the alert resolves.
	mb, err := bus.Client(sonLa).Mailbox(ctx, sonLa)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Fetch(ctx, 0, 500*time.Millisecond, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.WaitState(ctx, res.ID, sonLa, envelope.StateDelivered); err != nil {
		t.Fatal(err)
	}
	only(t, check(t, m), alerts.EventResolved, alerts.RuleNotDelivered, sonLa)

	// Delivered a week and more ago, neither accepted nor rejected.
	clk.advance(8 * 24 * time.Hour)
	ev = check(t, m)
	only(t, ev, alerts.EventRaised, alerts.RuleNotAnswered, sonLa)
	if _, err := bus.Client(sonLa).Mark(ctx, sonLa, res.ID, envelope.StateAccepted, broker.MarkOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.WaitState(ctx, res.ID, sonLa, envelope.StateAccepted); err != nil {
		t.Fatal(err)
	}
	only(t, check(t, m), alerts.EventResolved, alerts.RuleNotAnswered, sonLa)

	// Past the certificate's end: still the same alert, now critical.
	clk.advance(30 * 24 * time.Hour)
	check(t, m)
	// Ten events: cert raised; nd raised, cert repeated; nd and cert
	// repeated; nd resolved; na raised, cert repeated; na resolved; cert
	// repeated. Those of the documents, in order:
	for deadline := ctxT(t); ; {
		hook.mu.Lock()
		n := len(hook.events)
		hook.mu.Unlock()
		if n >= 10 {
			break
		}
		select {
		case <-hook.got:
		case <-deadline.Done():
			t.Fatalf("webhook took %d events, want 10", n)
		}
	}
	var got []string
	hook.mu.Lock()
	for _, e := range hook.events {
		if e.Alert.Rule != alerts.RuleCertExpiring {
			got = append(got, e.Type+" "+string(e.Alert.Rule))
		}
	}
	hook.mu.Unlock()
	want := "raised not_delivered,repeated not_delivered,resolved not_delivered,raised not_answered,resolved not_answered"
	if strings.Join(got, ",") != want {
		t.Fatalf("webhook events in order: %q, want %s", got, want)
	}

	list, err := alerts.List(ctx, admin.JetStream())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].Rule != alerts.RuleCertExpiring || list[0].State != alerts.Firing || list[0].Severity != alerts.Critical {
		t.Fatalf("alerts on the bus: %+v", list)
	}
	for _, a := range list[1:] {
		if a.State != alerts.Resolved || a.Resolved.IsZero() {
			t.Fatalf("alert %+v not resolved", a)
		}
	}
}

// TestQuarantineLinkAndDiskRules: the quarantine of a real bus growing, a
// federation link down past its threshold, the real disk of a directory;
// a manager started again on the same bucket raises nothing twice.
func TestQuarantineLinkAndDiskRules(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	ctx := ctxT(t)
	js := bus.Service.Client.JetStream()
	clk := newClock()
	linkUp := atomic.Bool{}
	links := alerts.LinksFunc(func(context.Context) ([]alerts.Link, error) {
		return []alerts.Link{{Peer: "national", Up: linkUp.Load()}}, nil
	})
	src := alerts.Sources{Quarantine: alerts.StreamQuarantine{JS: js}, Links: links, Disk: alerts.DirDisk{Dir: t.TempDir()}}
	cfg := alerts.Config{Now: clk.Now, DiskFull: 1e-9}
	m, err := alerts.New(ctx, js, cfg, src, alerts.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	ev := check(t, m)
	only(t, ev, alerts.EventRaised, alerts.RuleDiskFilling, src.Disk.(alerts.DirDisk).Dir)
	if len(ev) != 1 {
		t.Fatalf("first check: %+v (a link just seen down, a quarantine not grown)", ev)
	}
	if _, err := js.Publish(ctx, record.QuarantineSubject(govOffice), []byte("x")); err != nil {
		t.Fatal(err)
	}
	clk.advance(16 * time.Minute)
	ev = check(t, m)
	only(t, ev, alerts.EventRaised, alerts.RuleQuarantineGrowing, "quarantine")
	if a := only(t, ev, alerts.EventRaised, alerts.RuleLinkDown, "national"); a.Severity != alerts.Critical {
		t.Fatalf("link alert %+v", a)
	}
	m.Close()

	// Started again: the same alerts hold, none is raised twice.
	m2, err := alerts.New(ctx, js, cfg, src, alerts.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	clk.advance(time.Minute)
	if ev := check(t, m2); len(ev) != 0 {
		t.Fatalf("after a restart: %+v, want nothing new", ev)
	}
	// An hour with no new quarantine entry, the link back up.
	linkUp.Store(true)
	clk.advance(2 * time.Hour)
	ev = check(t, m2)
	only(t, ev, alerts.EventResolved, alerts.RuleQuarantineGrowing, "quarantine")
	only(t, ev, alerts.EventResolved, alerts.RuleLinkDown, "national")

	// A disk threshold no disk reaches resolves the disk alert.
	cfg.DiskFull = 1
	m3, err := alerts.New(ctx, js, cfg, src, alerts.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	defer m3.Close()
	only(t, check(t, m3), alerts.EventResolved, alerts.RuleDiskFilling, src.Disk.(alerts.DirDisk).Dir)
}

// TestWebhookGivesUp: a receiver that always fails gets the event its
// number of attempts, and the failure is counted.
func TestWebhookGivesUp(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	clk := newClock()
	m, err := alerts.New(ctxT(t), bus.Service.Client.JetStream(), alerts.Config{Now: clk.Now, DiskFull: 1e-9,
		Webhook: alerts.WebhookConfig{URL: srv.URL, Attempts: 3, Backoff: time.Millisecond}},
		alerts.Sources{Disk: alerts.DirDisk{Dir: t.TempDir()}}, alerts.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	check(t, m)
	for ctx := ctxT(t); ; {
		if webhookEvents(t, m, "failed") == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("webhook failure not counted after %d requests", hits.Load())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if hits.Load() != 3 {
		t.Fatalf("webhook tried %d times, want 3", hits.Load())
	}
}

// series gathers the metrics called name from m's collector.
func series(t *testing.T, m *alerts.Manager, name string) []*dto.Metric {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()
		}
	}
	return nil
}

// webhookEvents is one result of docaxis_alert_webhook_events_total.
func webhookEvents(t *testing.T, m *alerts.Manager, result string) float64 {
	for _, s := range series(t, m, "docaxis_alert_webhook_events_total") {
		if s.GetLabel()[0].GetValue() == result {
			return s.GetCounter().GetValue()
		}
	}
	return -1
}

func TestConfigRefused(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	for _, cfg := range []alerts.Config{
		{DiskFull: 2},
		{Webhook: alerts.WebhookConfig{URL: "ftp://example.org/hook"}},
		{Webhook: alerts.WebhookConfig{URL: "not a url"}},
		{Interval: -time.Second},
	} {
		if _, err := alerts.New(ctxT(t), bus.Service.Client.JetStream(), cfg, alerts.Sources{}); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
