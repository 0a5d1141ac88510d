package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/tsa"
	"github.com/docaxis/docaxis/envelope"
)

func TestAuditEvidenceCommand(t *testing.T) {
	bus := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := tsa.NewAuthority(bus.CA, "test TSA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	defer srv.Close()
	client, err := tsa.NewClient([]string{srv.URL}, a.Roots())
	if err != nil {
		t.Fatal(err)
	}
	ts, err := audit.StartTimestamper(ctx, bus.Service.Client.JetStream(), audit.TimestamperConfig{TSA: client, Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Stop()
	key, err := audit.OpenKey(filepath.Join(bus.Keystore.Dir, "audit"), bus.CA)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := audit.StartChainer(ctx, bus.Service.Client.JetStream(), audit.ChainerConfig{Key: key, Interval: time.Hour, Logger: bustest.Logger(), OnCheckpoint: ts.Checkpointed})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Stop(context.Background())
	bus.AddAgency("000.00.00.G22", "Văn phòng Chính phủ")
	bus.AddAgency("000.00.00.H41", "UBND tỉnh Nghệ An")
	res, err := bus.Client().Send(ctx, envelope.New("000.00.00.G22", []string{"000.00.00.H41"}, "Công văn"))
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ch.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for ts.Status().LastSeq < cp.Seq {
		if ctx.Err() != nil {
			t.Fatalf("no token: %+v", ts.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	global := []string{"--home", bus.Keystore.Dir, "--server", bus.URL()}
	pkg := filepath.Join(t.TempDir(), "ev.zip")
	evidenceFlags.out, evidenceFlags.as, evidenceFlags.tsaRoot, evidenceFlags.attachments = "", "", "", false
	out, errOut, err := runCLI(t, append([]string{"audit", "evidence", res.ID, "--out", pkg}, global...)...)
	if err != nil || !strings.Contains(out, "1 time-stamp tokens") || !strings.Contains(out, "every record time-stamped") {
		t.Fatalf("evidence: %v\n%s%s", err, out, errOut)
	}
	auditTSARoot = ""
	out, _, err = runCLI(t, "audit", "verify", pkg)
	if err != nil || !strings.Contains(out, "OK: the bundle verifies") || !strings.Contains(out, `by "test TSA"`) {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	// A byte of the token changed: exit status 1, naming the token.
	bad := filepath.Join(t.TempDir(), "bad.zip")
	rewriteZip(t, pkg, bad, "timestamps/"+strings.Repeat("0", 19)+"1.tsr")
	out, _, err = runCLI(t, "audit", "verify", bad)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(out, "timestamps/") {
		t.Fatalf("verify of a tampered package: %v\n%s", err, out)
	}
	// A third agency asking for it gets nothing.
	evidenceFlags.as = "000.00.00.H99"
	if _, _, err := runCLI(t, append([]string{"audit", "evidence", res.ID, "--out", pkg + "2", "--as", "000.00.00.H99"}, global...)...); !errors.Is(err, audit.ErrNoDocument) {
		t.Fatalf("evidence for a third agency: %v", err)
	}
	evidenceFlags.as = ""
}
