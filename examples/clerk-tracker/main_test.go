package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
)

func TestTrackerShowsLiveStates(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency("000.00.00.G22", "Văn phòng Chính phủ")
	bus.AddAgency("000.00.00.H41", "UBND tỉnh Nghệ An")
	bus.AddAgency("000.00.00.H14", "UBND tỉnh Sơn La")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e := envelope.New("000.00.00.G22", []string{"000.00.00.H41", "000.00.00.H14"}, "Báo cáo tình hình")
	e.Document = &envelope.Document{DueDate: "2020-01-01"}
	res, err := bus.Client("000.00.00.G22").Send(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	// Before anyone acts: both rows sent, and overdue.
	var first bytes.Buffer
	if err := run(ctx, []string{"-server", bus.URL(), "-home", bus.Keystore.Dir, "-creds", bus.AgencyCreds("000.00.00.G22"),
		"-as", "000.00.00.G22", "-once"}, &first); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(first.String(), "SENT (QUÁ HẠN)"); n != 2 {
		t.Fatalf("first table has %d overdue sent rows:\n%s", n, first.String())
	}
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-server", bus.URL(), "-home", bus.Keystore.Dir, "-creds", bus.AgencyCreds("000.00.00.G22"),
			"-as", "000.00.00.G22", "-until-rows", "2"}, &out)
	}()
	// The recipients act while the tracker runs.
	for who, final := range map[string]envelope.State{"000.00.00.H41": envelope.StateDone, "000.00.00.H14": envelope.StateRejected} {
		c := bus.Client(who)
		mb, err := c.Mailbox(ctx, who)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mb.Fetch(ctx, 1, 5*time.Second, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WaitState(ctx, res.ID, who, envelope.StateDelivered); err != nil {
			t.Fatal(err)
		}
		steps := []envelope.State{envelope.StateAccepted, envelope.StateDone}
		if final == envelope.StateRejected {
			steps = []envelope.State{envelope.StateRejected}
		}
		for _, s := range steps {
			if _, err := c.Mark(ctx, who, res.ID, s, broker.MarkOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.WaitState(ctx, res.ID, who, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"Báo cáo tình hình", "000.00.00.H41", "DONE", "REJECTED"} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
}
