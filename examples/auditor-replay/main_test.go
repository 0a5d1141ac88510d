package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/audit/audittest"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
)

// The auditor replays against a bus with authentication, as `docaxis
// serve` runs it, with the bus's credentials found in the home.
func TestAuditorReplay(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key, err := audit.OpenKey(filepath.Join(bus.Keystore.Dir, "audit"), bus.CA)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := audit.StartChainer(ctx, bus.Service.Client.JetStream(), audit.ChainerConfig{Key: key, Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Stop(context.Background())
	bus.AddAgency("000.00.00.G22", "Văn phòng Chính phủ")
	bus.AddAgency("000.00.00.H41", "UBND tỉnh Nghệ An")
	bus.AddAgency("000.00.00.H14", "UBND tỉnh Sơn La")
	c := bus.Client()
	for _, to := range []string{"000.00.00.H41", "000.00.00.H14", "000.00.00.H41"} {
		if _, err := c.Send(ctx, envelope.New("000.00.00.G22", []string{to}, "Công văn gửi "+to)); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "evidence.zip")
	var stdout, stderr bytes.Buffer
	err = run(ctx, []string{"--home", bus.Keystore.Dir, "--server", bus.URL(), "--since", "1h", "--agency", "000.00.00.H41", "--out", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	got := stdout.String()
	for _, want := range []string{"replayed 2 records: 2 verified, 0 failed", "exported 2 records", "bundle verifies offline: 2 records", "covered by a checkpoint: true"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "000.00.00.H14 ") {
		t.Errorf("Sơn La's traffic in Nghệ An's replay:\n%s", got)
	}

	// Nghệ An's second document cut from the record with its link: the
	// auditor's run fails, whatever verified.
	if _, err := ch.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := audittest.CutRecord(ctx, bus.Service.Client.JetStream(), 3); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	err = run(ctx, []string{"--home", bus.Keystore.Dir, "--server", bus.URL(), "--since", "1h", "--agency", "000.00.00.H41", "--out", out}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "audit chain is broken in 1 places") || !strings.Contains(stdout.String(), "chain: audit chain broken") {
		t.Fatalf("run over a cut record: %v\n%s%s", err, stdout.String(), stderr.String())
	}
}
