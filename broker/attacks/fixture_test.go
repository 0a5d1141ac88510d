package attacks_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
)

// The cast: G22 writes to H14 only; H99 and H41 are the attackers, each a
// real agency of the bus with its own key, credentials and token.
const (
	victimSender    = "000.00.00.G22"
	victimRecipient = "000.00.00.H14"
	attacker        = "000.00.00.H99"
	attacker2       = "000.00.00.H41"
)

var cast = map[string]string{
	victimSender:    "Văn phòng Chính phủ",
	victimRecipient: "UBND tỉnh Sơn La",
	attacker:        "Cơ quan thử tấn công",
	attacker2:       "UBND tỉnh Nghệ An",
}

// arena is a bus with authentication, its HTTP API, and a token per agency.
type arena struct {
	t     *testing.T
	bus   *bustest.Bus
	admin *broker.Client // the bus's own client, as `docaxis serve` holds it
	http  *httptest.Server
	srv   *httpapi.Server
	tok   map[string]string
}

// eventually retries fn until it succeeds; the cap only keeps a broken
// test from hanging, it is not a performance threshold.
func eventually(t testing.TB, what string, fn func() error) {
	t.Helper()
	bustest.Eventually(t, 2*time.Minute, what, fn)
}

func ctxT(t testing.TB) context.Context { return bustest.Context(t, 60*time.Second) }

func newArena(t *testing.T) *arena {
	t.Helper()
	bus := bustest.Start(t, bustest.WithAuth())
	ctx := ctxT(t)
	for code, name := range cast {
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
	tokens, err := httpapi.OpenTokens(ctx, admin.JetStream(), httpapi.TokensConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{Client: admin, Auth: tokens, Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Drain)
	a := &arena{t: t, bus: bus, admin: admin, http: ts, srv: srv, tok: map[string]string{}}
	for code := range cast {
		tok, _, err := tokens.Create(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		a.tok[code] = tok
	}
	return a
}

// client is the docaxis client library connected with code's credentials.
func (a *arena) client(code string) *broker.Client { return a.bus.Client(code) }

// raw is a plain nats.go connection with code's credentials, as an
// attacker's own program would open it. Permission errors are collected.
func (a *arena) raw(code string) (*nats.Conn, *violations) {
	a.t.Helper()
	v := &violations{errs: make(chan error, 64)}
	nc, _ := a.bus.AgencyConnect(a.t, code, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { v.add(err) }))
	return nc, v
}

// victimSend sends G22 → H14 a document with a confidential attachment and
// waits until H14's pair is tracked as sent. It returns the envelope id
// and the attachment's content.
func (a *arena) victimSend() (id string, secret string) {
	a.t.Helper()
	ctx := ctxT(a.t)
	secret = "Tài liệu mật " + envelope.NewID()
	res, err := a.client(victimSender).Send(ctx, envelope.New(victimSender, []string{victimRecipient}, "Mật: chỉ gửi Sơn La"),
		broker.File{Name: "mat.txt", Reader: strings.NewReader(secret), Size: int64(len(secret))})
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := a.admin.WaitState(ctx, res.ID, victimRecipient, envelope.StateSent); err != nil {
		a.t.Fatal(err)
	}
	return res.ID, secret
}

// do sends an HTTP request with code's token ("" for none).
func (a *arena) do(code, method, path string, body io.Reader, header ...string) (*http.Response, []byte) {
	a.t.Helper()
	req, err := http.NewRequestWithContext(ctxT(a.t), method, a.http.URL+path, body)
	if err != nil {
		a.t.Fatal(err)
	}
	if code != "" {
		req.Header.Set("Authorization", "Bearer "+a.tok[code])
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// violations collects the permission errors the server reported.
type violations struct {
	errs chan error
}

func (v *violations) add(err error) {
	if v.errs == nil {
		return
	}
	select {
	case v.errs <- err:
	default:
	}
}
