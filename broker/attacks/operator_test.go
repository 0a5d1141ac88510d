package attacks_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/alerts"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/broker/report"
	"github.com/docaxis/docaxis/broker/retention"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// operatorArena is the arena's bus with the operator's page served too,
// an operator token, and one of the victim's copies in quarantine.
type operatorArena struct {
	*arena
	ts         *httptest.Server
	ops        *httpapi.OperatorTokens
	opToken    string
	quarantine uint64
}

func newOperatorArena(t *testing.T) *operatorArena {
	t.Helper()
	a := newArena(t)
	ctx := ctxT(t)
	tokens, err := httpapi.OpenTokens(ctx, a.admin.JetStream(), httpapi.TokensConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ops, err := httpapi.OpenOperatorTokens(ctx, a.admin.JetStream(), httpapi.TokensConfig{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := alerts.New(ctx, a.admin.JetStream(), alerts.Config{}, alerts.Sources{Tracking: a.admin}, alerts.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	srv, err := httpapi.New(httpapi.Config{Client: a.admin, Auth: tokens, Logger: bustest.Logger(), Operator: &httpapi.OperatorConfig{Auth: ops, Alerts: m}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Drain)
	o := &operatorArena{arena: a, ts: ts, ops: ops}
	if o.opToken, _, err = ops.Create(ctx, "Quản trị viên"); err != nil {
		t.Fatal(err)
	}
	// The victim recipient's copy, quarantined the way the bus does it.
	id, _ := a.victimSend()
	tr, err := a.admin.Tracking(ctx, id, victimRecipient)
	if err != nil {
		t.Fatal(err)
	}
	st, err := a.admin.JetStream().Stream(ctx, record.Stream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetMsg(ctx, tr.Seq)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: record.QuarantineSubject(victimRecipient), Data: raw.Data, Header: nats.Header{}}
	msg.Header.Set(record.HeaderOriginSeq, strconv.FormatUint(tr.Seq, 10))
	msg.Header.Set(record.HeaderOriginSubject, raw.Subject)
	msg.Header.Set(record.HeaderEnvelope, id)
	msg.Header.Set(record.HeaderReason, "Mật: lỗi lưu trữ của Sơn La")
	ack, err := a.admin.JetStream().PublishMsg(ctx, msg, jetstream.WithExpectStream(record.QuarantineStream))
	if err != nil {
		t.Fatal(err)
	}
	o.quarantine = ack.Sequence
	return o
}

// opDo sends a request to the operator server with a raw Authorization
// value ("" for none).
func (o *operatorArena) opDo(method, path, auth string) (int, []byte) {
	o.t.Helper()
	req, err := http.NewRequestWithContext(ctxT(o.t), method, o.ts.URL+path, nil)
	if err != nil {
		o.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

var operatorRoutes = []struct{ method, path string }{
	{"GET", "/v1/operator/me"},
	{"GET", "/v1/operator/directory"},
	{"GET", "/v1/operator/directory?q=son+la"},
	{"GET", "/v1/operator/directory/" + victimRecipient},
	{"GET", "/v1/operator/systems"},
	{"GET", "/v1/operator/systems/x/agencies"},
	{"GET", "/v1/operator/quarantine"},
	{"GET", "/v1/operator/quarantine/1"},
	{"POST", "/v1/operator/quarantine/1/retry"},
	{"GET", "/v1/operator/audit"},
	{"GET", "/v1/operator/federation"},
	{"GET", "/v1/operator/alerts"},
	{"GET", "/v1/operator/stats"},
}

// TestOperatorRoutesRefuseOthers: no token, an agency's token, forged and
// revoked operator tokens get 401 on every operator route, and the
// answer holds nothing of the bus.
func TestOperatorRoutesRefuseOthers(t *testing.T) {
	o := newOperatorArena(t)
	ctx := ctxT(t)
	revoked, _, err := o.ops.Create(ctx, "Người đã nghỉ")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.ops.Revoke(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	agencyTok := o.tok[attacker]
	forged := []struct{ name, auth string }{
		{"no token", ""},
		{"agency token", "Bearer " + agencyTok},
		{"agency token as an operator's", "Bearer dxo_" + strings.TrimPrefix(agencyTok, "dxt_")},
		{"made-up operator token", "Bearer dxo_" + strings.Repeat("A", 43)},
		{"operator token one letter off", "Bearer " + o.opToken[:len(o.opToken)-1] + map[bool]string{true: "B", false: "A"}[strings.HasSuffix(o.opToken, "A")]},
		{"its hash", "Bearer " + httpapi.HashToken(o.opToken)},
		{"overlong", "Bearer " + o.opToken + strings.Repeat("x", 200)},
		{"revoked operator token", "Bearer " + revoked},
		{"basic auth", "Basic " + o.opToken},
	}
	for _, f := range forged {
		for _, r := range operatorRoutes {
			status, body := o.opDo(r.method, r.path, f.auth)
			if status != http.StatusUnauthorized {
				t.Errorf("%s: %s %s: %d %s", f.name, r.method, r.path, status, body)
			}
			for _, leak := range []string{victimRecipient, "Sơn La", "Mật"} {
				if strings.Contains(string(body), leak) {
					t.Errorf("%s: %s %s leaks %q: %s", f.name, r.method, r.path, leak, body)
				}
			}
		}
	}
	// An operator token does not open the agencies' API either.
	if status, _ := o.opDo("GET", "/v1/inbox", "Bearer "+o.opToken); status != http.StatusUnauthorized {
		t.Errorf("operator token on the agencies' API: %d", status)
	}
	// The entry is still there, and nobody's action is on the trail.
	status, body := o.opDo("GET", "/v1/operator/audit", "Bearer "+o.opToken)
	var audit struct{ Actions []httpapi.OperatorAction }
	if status != http.StatusOK || json.Unmarshal(body, &audit) != nil || len(audit.Actions) != 0 {
		t.Fatalf("audit trail after the attempts: %d %s", status, body)
	}
	if q, err := o.admin.QuarantineEntry(ctx, strconv.FormatUint(o.quarantine, 10)); err != nil || q.Agency != victimRecipient {
		t.Fatalf("victim's quarantine entry: %+v, %v", q, err)
	}
}

// TestOperatorQuarantineNotRetriedByAgency: an attacker agency tries to
// re-drive, drop or read the victim's quarantine entry, write the
// operators' trail, plant an operator token, and lift or place legal
// holds, straight on NATS with its own credentials. Every one is refused
// by the server, and the entry stays as it was.
func TestOperatorQuarantineNotRetriedByAgency(t *testing.T) {
	o := newOperatorArena(t)
	ctx := ctxT(t)
	seq := strconv.FormatUint(o.quarantine, 10)
	if _, err := retention.Open(ctx, o.admin, nil, 1); err != nil { // the holds bucket exists
		t.Fatal(err)
	}
	// Through the HTTP API: the agencies' API has no such route; the
	// operator's answers 401 to an agency token (above).
	if r, _ := o.do(attacker, "POST", "/v1/operator/quarantine/"+seq+"/retry", nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("retry on the agencies' server: %d", r.StatusCode)
	}
	forgedInfo, _ := json.Marshal(httpapi.OperatorInfo{Name: "H99"})
	for _, subject := range []string{
		"$JS.API.STREAM.MSG.GET." + record.QuarantineStream,
		"$JS.API.STREAM.MSG.DELETE." + record.QuarantineStream,
		"$JS.API.STREAM.PURGE." + record.QuarantineStream,
		"$JS.API.STREAM.MSG.GET." + httpapi.OperatorLogStream,
		"$JS.API.STREAM.INFO." + httpapi.OperatorLogStream,
		"axis.oplog.quarantine.retry",
		"$KV." + httpapi.OperatorTokenBucket + "." + httpapi.HashToken("dxo_planted"),
		"$JS.API.DIRECT.GET.KV_" + httpapi.OperatorTokenBucket,
		"$KV." + retention.HoldBucket + ".agency." + envelope.Token(attacker),
		"$KV." + retention.HoldBucket + ".doc." + envelope.NewID(),
		"$KV." + retention.StateBucket + ".policy",
		"$KV." + alerts.Bucket + ".not_delivered.0000000000000000",
		"$JS.API.STREAM.MSG.DELETE." + record.Stream,
	} {
		o.permRefused(t, subject, forgedInfo)
	}
	status, _ := o.opDo("GET", "/v1/operator/me", "Bearer dxo_planted")
	if status != http.StatusUnauthorized {
		t.Fatalf("planted operator token: %d", status)
	}
	if q, err := o.admin.QuarantineEntry(ctx, seq); err != nil || q.Agency != victimRecipient {
		t.Fatalf("victim's quarantine entry after the attempts: %+v, %v", q, err)
	}
	// The operator retries it; the trail names the operator.
	if status, body := o.opDo("POST", "/v1/operator/quarantine/"+seq+"/retry", "Bearer "+o.opToken); status != http.StatusOK {
		t.Fatalf("operator's retry: %d %s", status, body)
	}
	_, body := o.opDo("GET", "/v1/operator/audit", "Bearer "+o.opToken)
	var audit struct{ Actions []httpapi.OperatorAction }
	if json.Unmarshal(body, &audit) != nil || len(audit.Actions) != 1 || audit.Actions[0].Operator != "Quản trị viên" || audit.Actions[0].Target != seq {
		t.Fatalf("audit trail: %s", body)
	}
}

// TestOperatorMalformedQueries: with a valid operator token, oversized
// and malformed queries get 400 and never reach the bus as subjects or
// keys.
func TestOperatorMalformedQueries(t *testing.T) {
	o := newOperatorArena(t)
	auth := "Bearer " + o.opToken
	for _, path := range []string{
		"/v1/operator/directory?q=" + strings.Repeat("%C3%A1", 150),
		"/v1/operator/directory?x=" + strings.Repeat("y", 5000),
		"/v1/operator/directory?parent=" + url.QueryEscape("000.00.00.H14.>"),
		"/v1/operator/directory?parent=" + url.QueryEscape("*"),
		"/v1/operator/directory?offset=99999999999",
		"/v1/operator/directory?limit=-5",
		"/v1/operator/directory?q=%E0%80%80",
		"/v1/operator/directory?q=a%0Ab",
		"/v1/operator/directory?q=1&q=2",
		"/v1/operator/directory/" + url.PathEscape("000.00.00.H14 >"),
		"/v1/operator/quarantine?agency=" + url.QueryEscape("000.00.00.H14.>"),
		"/v1/operator/quarantine/" + url.PathEscape("1;2"),
		"/v1/operator/quarantine/-1",
		"/v1/operator/quarantine/99999999999999999999999",
		"/v1/operator/stats?from=" + url.QueryEscape("2025-01-01T00:00:00Z"),
		"/v1/operator/stats?from=1900-01-01&to=2999-01-01",
		"/v1/operator/stats?by=" + url.QueryEscape("agency\x00"),
		"/v1/operator/audit?limit=1000000",
		"/v1/operator/systems/" + strings.Repeat("s", 300) + "/agencies",
	} {
		status, body := o.opDo("GET", path, auth)
		if status != http.StatusBadRequest {
			t.Errorf("GET %.90s: %d %.200s", path, status, body)
		}
	}
	if status, _ := o.opDo("POST", "/v1/operator/quarantine/"+url.PathEscape("1 OR 1")+"/retry", auth); status != http.StatusBadRequest {
		t.Errorf("retry of a malformed sequence: %d", status)
	}
	if status, _ := o.opDo("POST", "/v1/operator/quarantine/424242/retry", auth); status != http.StatusNotFound {
		t.Errorf("retry of no entry: %d", status)
	}
}

// TestOperatorToolsNeedTheBus: reports, alerts and retention read every
// pair and write buckets of the bus's own; with an agency's credentials
// (what `docaxis --creds` gives) they get nothing.
func TestOperatorToolsNeedTheBus(t *testing.T) {
	a := newArena(t)
	a.victimSend()
	ctx := ctxT(t)
	c := a.client(attacker)
	seen := 0
	if err := c.EachTracking(ctx, func(*broker.Tracking) error { seen++; return nil }); !errors.Is(err, broker.ErrPermission) || seen != 0 {
		t.Fatalf("EachTracking as an agency: %v, %d pairs", err, seen)
	}
	if err := c.DeleteTracking(ctx, victimSender, envelope.NewID(), victimRecipient); !errors.Is(err, broker.ErrPermission) {
		t.Fatalf("DeleteTracking as an agency: %v", err)
	}
	if _, err := report.Make(ctx, c, report.Options{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}); err == nil {
		t.Fatal("report with an agency's credentials")
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := retention.Open(short, c, nil, 1); err == nil {
		t.Fatal("retention opened with an agency's credentials")
	}
	if _, err := alerts.List(short, c.JetStream()); err == nil {
		t.Fatal("alerts listed with an agency's credentials")
	}
}
