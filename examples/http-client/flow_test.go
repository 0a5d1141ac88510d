// Package httpclient holds the HTTP client example: flow.sh drives the
// whole exchange with curl; the test runs it against a real test bus.
package httpclient_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/httpapi"
)

func TestFlowScript(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl not found")
		}
		t.Skip("curl not found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The HTTP API runs as `docaxis serve` runs it: on a bus with
	// authentication, with the bus's own credentials.
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency("000.00.00.G22", "Văn phòng Chính phủ")
	bus.AddAgency("000.00.00.H41", "UBND tỉnh Nghệ An")
	c, err := broker.Connect(ctx, bus.URL(), broker.WithKeystore(bus.Keystore), broker.WithTrust(bus.Trust), broker.WithLogger(bustest.Logger()),
		broker.WithNATSOptions(bus.AdminOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tokens, err := httpapi.OpenTokens(ctx, c.JetStream(), httpapi.TokensConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{Client: c, Auth: tokens, Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Drain()
	tokA, _, err := tokens.Create(ctx, "000.00.00.G22")
	if err != nil {
		t.Fatal(err)
	}
	tokB, _, err := tokens.Create(ctx, "000.00.00.H41")
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.CommandContext(ctx, "bash", "flow.sh")
	cmd.Env = append(os.Environ(), "DOCAXIS_URL="+ts.URL, "TOKEN_A="+tokA, "TOKEN_B="+tokB, "AGENCY_B=000.00.00.H41", "FILE=")
	out, err := cmd.CombinedOutput()
	t.Logf("flow.sh:\n%s", out)
	if err != nil {
		t.Fatalf("flow.sh: %v", err)
	}
	last := strings.TrimSpace(string(out))
	last = last[strings.LastIndex(last, "\n")+1:]
	id := strings.TrimPrefix(last, "OK ")
	if !strings.HasPrefix(last, "OK ") {
		t.Fatalf("flow.sh did not finish: %q", last)
	}
	// What the script did is on the bus, as the Go client sees it.
	st, err := c.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Recipients[0].State != "done" || len(st.Recipients[0].History) != 5 {
		t.Fatalf("status = %+v", st.Recipients[0])
	}
}
