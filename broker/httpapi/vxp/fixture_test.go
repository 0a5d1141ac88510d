package vxp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/docaxis/docaxis/broker/httpapi/vxp"
	"github.com/docaxis/docaxis/signing"
	"github.com/prometheus/client_golang/prometheus"
)

// bench is a bus with authentication, the HTTP API with /vxp mounted as
// docaxis serve mounts it, and the bus's own client.
type bench struct {
	t     *testing.T
	bus   *bustest.Bus
	admin *broker.Client
	http  *httptest.Server
	vxp   *vxp.Server
	reg   *prometheus.Registry
}

func ctxT(t testing.TB) context.Context { return bustest.Context(t, 90*time.Second) }

func newBench(t *testing.T, allowRegister bool) *bench {
	t.Helper()
	bus := bustest.Start(t, bustest.WithAuth())
	ctx := ctxT(t)
	admin, err := broker.Connect(ctx, bus.URL(), broker.WithKeystore(bus.Keystore), broker.WithTrust(bus.Trust),
		broker.WithLogger(bustest.Logger()), broker.WithNATSOptions(bus.AdminOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	reg := prometheus.NewRegistry()
	v, err := vxp.New(ctx, vxp.Config{Client: admin, Keystore: bus.Keystore, AllowRegister: allowRegister,
		Registerer: reg, Logger: bustest.Logger(), MaxEdocBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := httpapi.OpenTokens(ctx, admin.JetStream(), httpapi.TokensConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{Client: admin, Auth: tokens, Logger: bustest.Logger(), VXP: v})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Drain)
	return &bench{t: t, bus: bus, admin: admin, http: ts, vxp: v, reg: reg}
}

// addSystem registers a document system serving codes, as docaxis system
// add and agency add --system do, and returns its secret.
func (b *bench) addSystem(id string, codes ...string) string {
	b.t.Helper()
	ctx := ctxT(b.t)
	sid, err := b.bus.CA.IssueSystem(id, "DMS "+id, signing.IssueOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	if err := b.bus.Keystore.SaveSystem(sid); err != nil {
		b.t.Fatal(err)
	}
	if err := b.admin.RegisterSystem(ctx, broker.System{ID: id, Name: "DMS " + id, Certificate: string(signing.EncodeCerts(sid.Chain...))}); err != nil {
		b.t.Fatal(err)
	}
	secret := b.rotate(id)
	for _, code := range codes {
		b.serve(id, code)
	}
	return secret
}

// serve registers code as served by system id.
func (b *bench) serve(id, code string) {
	b.t.Helper()
	raw, err := b.bus.CA.SignBinding(signing.Binding{Agency: code, System: id})
	if err != nil {
		b.t.Fatal(err)
	}
	if err := b.admin.RegisterAgency(ctxT(b.t), broker.Agency{Code: code, Name: "Cơ quan " + code, System: id, Bindings: []string{raw}}); err != nil {
		b.t.Fatal(err)
	}
}

// rotate writes a new secret for system id, as docaxis system secret
// --rotate does.
func (b *bench) rotate(id string) string {
	b.t.Helper()
	buf := make([]byte, 32)
	_, _ = rand.Read(buf)
	secret := hex.EncodeToString(buf)
	path := vxp.SecretPath(b.bus.Keystore, id)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		b.t.Fatal(err)
	}
	return secret
}

// sdk returns a DMS's service object for system id.
func (b *bench) sdk(id, secret string) *sdk {
	return newSDK(b.t, b.http.URL+"/vxp", id, secret)
}

// testdata reads a real edXML file of ../shared, with organ codes
// replaced. CI must have them; a local checkout without them skips.
func testdata(t testing.TB, name string, replace ...string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "shared", "testdata", "edxml", name))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("real edXML sample missing in CI: %v", err)
		}
		t.Skipf("edXML samples not found: %v", err)
	}
	s := string(raw)
	for i := 0; i+1 < len(replace); i += 2 {
		s = strings.ReplaceAll(s, replace[i], replace[i+1])
	}
	return []byte(s)
}
