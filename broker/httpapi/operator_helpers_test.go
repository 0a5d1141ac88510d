package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/alerts"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// opEnv is a bus with authentication, a directory of provinces with
// departments and communes under them, a document delivered and one
// quarantined, an alert holding, and the HTTP server with the operator's
// page.
type opEnv struct {
	t          *testing.T
	bus        *bustest.Bus
	admin      *broker.Client
	ts         *httptest.Server
	opToken    string
	agencyTok  string
	delivered  string // G22 → H41, delivered
	quarantine uint64 // the quarantine entry of G22 → H14
	entries    int    // directory entries
}

const (
	ngheAnDept    = "000.01.41.H41" // Sở Nội vụ tỉnh Nghệ An
	ngheAnSystem  = "vnpt-ioffice-nghean"
	communesUnder = 150
)

type systemsList []httpapi.OperatorSystem

func (s systemsList) Systems(context.Context) ([]httpapi.OperatorSystem, error) { return s, nil }

type linksList []httpapi.OperatorLink

func (l linksList) Links(context.Context) ([]httpapi.OperatorLink, error) { return l, nil }

func newOperatorEnv(t *testing.T) *opEnv {
	t.Helper()
	bus := bustest.Start(t, bustest.WithAuth())
	ctx := ctxT(t)
	for code, name := range agencyNames {
		id := bus.AddAgency(code, name)
		if err := bus.Service.Client.RegisterAgency(ctx, broker.Agency{Code: code, Name: name, Certificate: string(signing.EncodeCerts(id.Chain...))}); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := broker.Connect(ctx, bus.URL(), broker.WithKeystore(bus.Keystore), broker.WithTrust(bus.Trust),
		broker.WithLogger(bustest.Logger()), broker.WithNATSOptions(bus.AdminOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	e := &opEnv{t: t, bus: bus, admin: admin}
	e.entries = len(agencyNames) + e.fillDirectory(ctx)

	// One document delivered, one quarantined by the bus as its
	// quarantine service would.
	res, err := bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Về việc báo cáo công tác văn thư năm 2025"))
	if err != nil {
		t.Fatal(err)
	}
	e.delivered = res.ID
	mb, err := bus.Client(ngheAn).Mailbox(ctx, ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Fetch(ctx, 0, 500*time.Millisecond, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.WaitState(ctx, res.ID, ngheAn, envelope.StateDelivered); err != nil {
		t.Fatal(err)
	}
	e.quarantine = e.quarantineOne(ctx)

	disk, err := alerts.New(ctx, admin.JetStream(), alerts.Config{DiskFull: 1e-9},
		alerts.Sources{Disk: alerts.DirDisk{Dir: t.TempDir()}}, alerts.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(disk.Close)
	if _, err := disk.Check(ctx); err != nil {
		t.Fatal(err)
	}

	tokens, err := httpapi.OpenTokens(ctx, admin.JetStream(), httpapi.TokensConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ops, err := httpapi.OpenOperatorTokens(ctx, admin.JetStream(), httpapi.TokensConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if e.opToken, _, err = ops.Create(ctx, "Nguyễn Văn An"); err != nil {
		t.Fatal(err)
	}
	if e.agencyTok, _, err = tokens.Create(ctx, govOffice); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	srv, err := httpapi.New(httpapi.Config{Client: admin, Auth: tokens, Logger: bustest.Logger(), Limits: httpapi.Limits{Rate: -1},
		Operator: &httpapi.OperatorConfig{
			Auth:    ops,
			Alerts:  disk,
			Systems: systemsList{{ID: ngheAnSystem, Name: "VNPT iOffice Nghệ An", Certificate: string(signing.EncodeCerts(bus.Identity(ngheAn).Chain...))}},
			Links:   linksList{{Peer: "quocgia", State: "up", Backlog: 3, LastDelivery: &now}, {Peer: "hanoi", State: "down"}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	e.ts = httptest.NewServer(srv)
	t.Cleanup(e.ts.Close)
	t.Cleanup(srv.Drain)
	return e
}

// fillDirectory writes directory-only entries straight into the bucket, as
// an import of the national directory would: the 60 other provinces with
// 20 departments each, Nghệ An's departments (one served by a document
// system) and communes under its first department. It waits until the
// bus's client has them all and returns how many.
func (e *opEnv) fillDirectory(ctx context.Context) int {
	kv, err := e.admin.JetStream().KeyValue(ctx, record.DirectoryBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	put := func(a broker.Agency) {
		a.Added = time.Now().UTC()
		b, err := json.Marshal(a)
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := kv.Put(ctx, "agency."+envelope.Token(a.Code), b); err != nil {
			e.t.Fatal(err)
		}
		n++
	}
	for p := 1; p <= 62; p++ {
		if p == 14 || p == 41 {
			continue
		}
		code := fmt.Sprintf("000.00.00.H%02d", p)
		put(broker.Agency{Code: code, Name: fmt.Sprintf("UBND tỉnh số %d", p)})
		for d := 1; d <= 20; d++ {
			put(broker.Agency{Code: fmt.Sprintf("000.%02d.%02d.H%02d", d, p, p), Name: fmt.Sprintf("Sở số %d tỉnh số %d", d, p), Parent: code})
		}
	}
	depts := []string{"Sở Nội vụ tỉnh Nghệ An", "Sở Tài chính tỉnh Nghệ An", "Sở Y tế tỉnh Nghệ An"}
	for i, name := range depts {
		a := broker.Agency{Code: fmt.Sprintf("000.%02d.41.H41", i+1), Name: name, Parent: ngheAn}
		if i == 0 {
			a.System, a.Email = ngheAnSystem, "snv@nghean.gov.vn"
		}
		if i == 2 {
			a.State = broker.StateSuspended
		}
		put(a)
	}
	for c := 1; c <= communesUnder; c++ {
		put(broker.Agency{Code: fmt.Sprintf("%03d.01.41.H41", c), Name: "Phòng " + strconv.Itoa(c) + " Sở Nội vụ", Parent: ngheAnDept, System: ngheAnSystem})
	}
	for {
		list, err := e.admin.Agencies(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(list) >= n+len(agencyNames) {
			return n
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("directory has %d entries, want %d", len(list), n+len(agencyNames))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// quarantineOne sends G22 → H14 and quarantines H14's copy the way the
// bus does: the record's bytes under H14's quarantine subject, pointing
// at the copy's sequence.
func (e *opEnv) quarantineOne(ctx context.Context) uint64 {
	res, err := e.bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{sonLa}, "Công văn bị cách ly"))
	if err != nil {
		e.t.Fatal(err)
	}
	tr, err := e.admin.WaitState(ctx, res.ID, sonLa, envelope.StateSent)
	if err != nil {
		e.t.Fatal(err)
	}
	st, err := e.admin.JetStream().Stream(ctx, record.Stream)
	if err != nil {
		e.t.Fatal(err)
	}
	raw, err := st.GetMsg(ctx, tr.Seq)
	if err != nil {
		e.t.Fatal(err)
	}
	m := &nats.Msg{Subject: record.QuarantineSubject(sonLa), Data: raw.Data, Header: nats.Header{}}
	m.Header.Set(record.HeaderOriginSeq, strconv.FormatUint(tr.Seq, 10))
	m.Header.Set(record.HeaderOriginSubject, raw.Subject)
	m.Header.Set(record.HeaderEnvelope, res.ID)
	m.Header.Set(record.HeaderDeliveries, "6")
	m.Header.Set(record.HeaderReason, "ứng dụng của cơ quan nhận lỗi: không lưu được tệp")
	ack, err := e.admin.JetStream().PublishMsg(ctx, m, jetstream.WithExpectStream(record.QuarantineStream))
	if err != nil {
		e.t.Fatal(err)
	}
	return ack.Sequence
}

// get sends a request with token ("" for none) and returns the status and
// the decoded JSON body.
func (e *opEnv) call(method, path, token string) (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		e.t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode, v
}
