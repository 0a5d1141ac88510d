package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
)

// The publisher runs against a bus with authentication, as `docaxis serve`
// runs it, with the credentials `docaxis agency creds` wrote in its home.
func TestPublisherSendsAndSeesDelivered(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency("000.00.00.G22", "Văn phòng Chính phủ")
	bus.AddAgency("000.00.00.H41", "UBND tỉnh Nghệ An")
	bus.AgencyCreds("000.00.00.G22") // HOME/agencies/CODE/nats.creds, found by default
	file := filepath.Join(t.TempDir(), "cv.txt")
	if err := os.WriteFile(file, []byte("Nội dung"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The recipient's side, acting while the publisher waits.
	done := make(chan error, 1)
	go func() {
		mb, err := bus.Client("000.00.00.H41").Mailbox(ctx, "000.00.00.H41")
		if err == nil {
			_, err = mb.Fetch(ctx, 1, 10*time.Second, func(context.Context, *broker.Delivery) error { return nil })
		}
		done <- err
	}()
	var out bytes.Buffer
	err := run(ctx, []string{"-server", bus.URL(), "-home", bus.Keystore.Dir, "-as", "000.00.00.G22",
		"-to", "000.00.00.H41", "-subject", "Về việc thử nghiệm", "-file", file, "-wait", "20s"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	id := lines[len(lines)-1]
	if !strings.Contains(out.String(), "000.00.00.H41 delivered") {
		t.Fatalf("output: %s", out.String())
	}
	ds, err := bus.Client().Status(ctx, id)
	if err != nil || ds.Recipients[0].State != envelope.StateDelivered {
		t.Fatalf("status: %+v, %v", ds, err)
	}
}
