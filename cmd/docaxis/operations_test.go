package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/alerts"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/report"
	"github.com/docaxis/docaxis/broker/retention"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

// `report`, `retention` and `alerts list`, `operator token` as an operator
// types them, against a bus with one document sent.
func TestOperationsCommands(t *testing.T) {
	bus := bustest.Start(t)
	bus.AddAgency("000.00.00.G22", "Văn phòng Chính phủ")
	bus.AddAgency("000.00.00.H41", "UBND tỉnh Nghệ An")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := bus.Client("000.00.00.G22").Send(ctx, envelope.New("000.00.00.G22", []string{"000.00.00.H41"}, "Báo cáo tháng"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Service.Client.WaitState(ctx, res.ID, "000.00.00.H41", envelope.StateSent); err != nil {
		t.Fatal(err)
	}
	today := time.Now().In(edxml.Vietnam).Format(time.DateOnly)

	out, errOut, ok := quarCLI(t, bus, "report", "--from", today, "--to", today, "--by", "agency", "--json")
	var r report.Report
	if !ok || json.Unmarshal([]byte(out), &r) != nil || r.Total.Sent != 1 || r.Total.Received != 1 || len(r.Rows) != 2 {
		t.Fatalf("report --json: %s %s", out, errOut)
	}
	if out, errOut, ok := quarCLI(t, bus, "report", "--from", today, "--to", today, "--csv"); !ok || !strings.HasPrefix(out, "period,key,name,sent") || !strings.Contains(out, ",total,,1,1,") {
		t.Fatalf("report --csv: %s %s", out, errOut)
	}
	for _, bad := range [][]string{
		{"report", "--from", "2025-13-01", "--to", today},
		{"report", "--from", today, "--to", today, "--by", "ministry"},
		{"report", "--from", today, "--to", today, "--csv", "--json"},
		{"report", "--to", today},
	} {
		if _, errOut, ok := quarCLI(t, bus, bad...); ok || errOut == "" {
			t.Errorf("%v: accepted (%s)", bad, errOut)
		}
	}

	if out, errOut, ok := quarCLI(t, bus, "retention", "set", "--record", "10y", "--attachments", "5y"); !ok || !strings.Contains(out, "record 10y") {
		t.Fatalf("retention set: %s %s", out, errOut)
	}
	if _, errOut, ok := quarCLI(t, bus, "retention", "set", "--record", "2h"); ok || !strings.Contains(errOut, "at least a day") {
		t.Fatalf("retention set 2h: %s", errOut)
	}
	if _, errOut, ok := quarCLI(t, bus, "retention", "hold", "--document", res.ID, "--reason", "Thanh tra 12/QĐ"); !ok {
		t.Fatalf("retention hold: %s", errOut)
	}
	if _, errOut, ok := quarCLI(t, bus, "retention", "hold", "--agency", "000.00.00.H41"); ok || !strings.Contains(errOut, "reason") {
		t.Fatalf("hold without a reason: %s", errOut)
	}
	out, errOut, ok = quarCLI(t, bus, "retention", "holds", "--json")
	var h retention.Hold
	if !ok || json.Unmarshal([]byte(out), &h) != nil || h.Target != res.ID || h.Reason != "Thanh tra 12/QĐ" {
		t.Fatalf("retention holds: %s %s", out, errOut)
	}
	out, errOut, ok = quarCLI(t, bus, "retention", "plan", "--json")
	var p retention.Plan
	if !ok || json.Unmarshal([]byte(out), &p) != nil || p.Policy.Record != 10*365*24*time.Hour || len(p.Remove) != 0 {
		t.Fatalf("retention plan: %s %s", out, errOut)
	}
	if out, errOut, ok := quarCLI(t, bus, "retention", "apply"); !ok || !strings.Contains(out, "removed 0 record message(s)") {
		t.Fatalf("retention apply: %s %s", out, errOut)
	}
	if _, errOut, ok := quarCLI(t, bus, "retention", "release", "--document", res.ID); !ok {
		t.Fatalf("retention release: %s", errOut)
	}

	// Alerts raised by a manager on the bus, listed by the CLI.
	m, err := alerts.New(ctx, bus.Service.Client.JetStream(), alerts.Config{DiskFull: 1e-9}, alerts.Sources{Disk: alerts.DirDisk{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Check(ctx); err != nil {
		t.Fatal(err)
	}
	out, errOut, ok = quarCLI(t, bus, "alerts", "list", "--json")
	var a alerts.Alert
	if !ok || json.Unmarshal([]byte(out), &a) != nil || a.Rule != alerts.RuleDiskFilling || a.State != alerts.Firing {
		t.Fatalf("alerts list: %s %s", out, errOut)
	}

	out, errOut, ok = quarCLI(t, bus, "operator", "token", "Nguyễn Văn An")
	if !ok || !strings.HasPrefix(strings.TrimSpace(out), "dxo_") {
		t.Fatalf("operator token: %s %s", out, errOut)
	}
	token := strings.TrimSpace(out)
	if out, errOut, ok := quarCLI(t, bus, "operator", "token", "--revoke", token); !ok || !strings.Contains(out, "Nguyễn Văn An") {
		t.Fatalf("operator token --revoke: %s %s", out, errOut)
	}
	if out, _, ok := quarCLI(t, bus, "operator", "token", "--list"); !ok || !strings.Contains(out, "Nguyễn Văn An") {
		t.Fatalf("operator token --list: %s", out)
	}
}
