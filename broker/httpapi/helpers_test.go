package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/docaxis/docaxis/signing"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"
)

const (
	govOffice = "000.00.00.G22"
	ngheAn    = "000.00.00.H41"
	sonLa     = "000.00.00.H14"
)

var agencyNames = map[string]string{
	govOffice: "Văn phòng Chính phủ",
	ngheAn:    "UBND tỉnh Nghệ An",
	sonLa:     "UBND tỉnh Sơn La",
}

// env is a bus, an HTTP API server on it, and a token per agency.
type env struct {
	t      *testing.T
	bus    *bustest.Bus
	client *broker.Client
	srv    *httpapi.Server
	ts     *httptest.Server
	tokens *httpapi.Tokens
	tok    map[string]string
	spec   *spec
}

func ctxT(t testing.TB) context.Context { return bustest.Context(t, 30*time.Second) }

type envOption func(*httpapi.Config)

func withLimits(l httpapi.Limits) envOption { return func(c *httpapi.Config) { c.Limits = l } }

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, bustest.Start(t), opts...)
}

// newAuthEnv is newEnv on a bus with authentication on, the server holding
// the bus's own credentials as `docaxis serve` does.
func newAuthEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, bustest.Start(t, bustest.WithAuth()), opts...)
}

func newEnvOn(t *testing.T, bus *bustest.Bus, opts ...envOption) *env {
	t.Helper()
	ctx := ctxT(t)
	for code, name := range agencyNames {
		id := bus.AddAgency(code, name)
		// The directory shows names; the harness registers codes only.
		err := bus.Service.Client.RegisterAgency(ctx, broker.Agency{Code: code, Name: name, Certificate: string(signing.EncodeCerts(id.Chain...))})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The server holds no identities of its own: it loads them from the
	// keystore, as `docaxis serve` does.
	c, err := broker.Connect(ctx, bus.URL(), broker.WithKeystore(bus.Keystore), broker.WithTrust(bus.Trust), broker.WithLogger(bustest.Logger()),
		broker.WithNATSOptions(bus.AdminOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	tokens, err := httpapi.OpenTokens(ctx, c.JetStream(), httpapi.TokensConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := httpapi.Config{Client: c, Auth: tokens, Logger: bustest.Logger(), Limits: httpapi.Limits{Rate: -1}}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := httpapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Drain) // runs first: ends event streams so Close returns
	e := &env{t: t, bus: bus, client: c, srv: srv, ts: ts, tokens: tokens, tok: map[string]string{}, spec: loadSpec(t)}
	for _, a := range []string{govOffice, ngheAn, sonLa} {
		tok, _, err := tokens.Create(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		e.tok[a] = tok
	}
	return e
}

// response is a finished exchange, checked against the OpenAPI document.
type response struct {
	*http.Response
	body []byte
}

func (r *response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v\n%s", r.Request.URL.Path, err, r.body)
	}
}

// errCode returns the code of a JSON error answer.
func (r *response) errCode(t *testing.T) string {
	t.Helper()
	var e struct{ Error, Code string }
	if err := json.Unmarshal(r.body, &e); err != nil || e.Code == "" || e.Error == "" {
		t.Fatalf("%s %s: not a JSON error body (%v): %s", r.Request.Method, r.Request.URL.Path, err, r.body)
	}
	return e.Code
}

// do sends a request as agency (no token when agency is ""), reads the
// answer and validates it against openapi.json.
func (e *env) do(method, path, agency string, body io.Reader, header ...string) *response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if agency != "" {
		req.Header.Set("Authorization", "Bearer "+e.tok[agency])
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return e.send(req)
}

func (e *env) send(req *http.Request) *response {
	e.t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	e.spec.check(e.t, req, res, b)
	return &response{Response: res, body: b}
}

// part is one part of a multipart body.
type part struct {
	name, filename, contentType string
	data                        []byte
}

func multipartBody(t *testing.T, parts ...part) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := `form-data; name="` + p.name + `"`
		if p.filename != "" {
			cd += `; filename="` + p.filename + `"`
		}
		h.Set("Content-Disposition", cd)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.data)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func meta(v string) part { return part{name: "meta", contentType: "application/json", data: []byte(v)} }

func file(name string, data []byte) part {
	return part{name: "file", filename: name, contentType: "text/plain", data: data}
}

// post sends a multipart envelope as agency.
func (e *env) post(agency string, parts ...part) *response {
	e.t.Helper()
	body, ct := multipartBody(e.t, parts...)
	return e.do("POST", "/v1/envelopes", agency, body, "Content-Type", ct)
}

// sendDoc sends a document over HTTP and returns its id.
func (e *env) sendDoc(from, subject string, to []string, files ...part) string {
	e.t.Helper()
	m, _ := json.Marshal(map[string]any{"to": to, "subject": subject})
	res := e.post(from, append([]part{meta(string(m))}, files...)...)
	if res.StatusCode != http.StatusCreated {
		e.t.Fatalf("send: %d %s", res.StatusCode, res.body)
	}
	var out struct{ ID string }
	res.json(e.t, &out)
	return out.ID
}

// spec validates responses against openapi.json.
type spec struct {
	doc    *openapi3.T
	router routers.Router
	raw    []byte
}

var (
	specOnce sync.Once
	specVal  *spec
	specErr  error
)

func loadSpec(t testing.TB) *spec {
	t.Helper()
	specOnce.Do(func() {
		raw, err := os.ReadFile("openapi.json")
		if err != nil {
			specErr = err
			return
		}
		doc, err := openapi3.NewLoader().LoadFromData(raw)
		if err != nil {
			specErr = err
			return
		}
		if specErr = doc.Validate(context.Background()); specErr != nil {
			return
		}
		router, err := legacyrouter.NewRouter(doc)
		if err != nil {
			specErr = err
			return
		}
		specVal = &spec{doc: doc, router: router, raw: raw}
	})
	if specErr != nil {
		t.Fatalf("openapi.json: %v", specErr)
	}
	return specVal
}

// check fails the test when a response does not match the document:
// status documented, content type listed, JSON body valid against its
// schema. Pages and static files are not part of the API.
func (s *spec) check(t testing.TB, req *http.Request, res *http.Response, body []byte) {
	t.Helper()
	if !strings.HasPrefix(req.URL.Path, "/v1/") {
		return
	}
	// Route on the path only: the document's server is relative.
	rr := req.Clone(context.Background())
	rr.URL.Scheme, rr.URL.Host, rr.Host = "", "", ""
	route, params, err := s.router.FindRoute(rr)
	if err != nil {
		if res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusMethodNotAllowed {
			return // an endpoint that does not exist, answered as such
		}
		t.Errorf("openapi: %s %s: no route: %v", req.Method, req.URL.Path, err)
		return
	}
	op := route.Operation
	if op.Responses.Status(res.StatusCode) == nil && op.Responses.Default() == nil {
		t.Errorf("openapi: %s %s answered %d, not documented", req.Method, req.URL.Path, res.StatusCode)
		return
	}
	ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	in.SetBodyBytes(body)
	if ct != "application/json" {
		// Streams and attachments: the content type must be listed; the
		// bytes have no schema to check.
		in.Options.ExcludeResponseBody = true
		if ref := op.Responses.Status(res.StatusCode); ref != nil && ref.Value.Content != nil && ref.Value.Content.Get(ct) == nil {
			t.Errorf("openapi: %s %s answered %d with %q, not documented", req.Method, req.URL.Path, res.StatusCode, ct)
		}
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("openapi: %s %s answered %d: %v\n%s", req.Method, req.URL.Path, res.StatusCode, err, body)
	}
}
