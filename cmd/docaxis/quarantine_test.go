package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
)

// quarCLI runs the binary and returns its output and error output, and
// whether it succeeded.
func quarCLI(t *testing.T, bus *bustest.Bus, args ...string) (string, string, bool) {
	t.Helper()
	cmd := exec.Command(cliBinary(t), append([]string{"--home", bus.Keystore.Dir, "--server", bus.URL()}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err == nil
}

// `quarantine list`, `retry` and `drop`: a refused envelope is re-driven
// by its id; an entry that does not point into the record is refused with
// the reason, and dropped.
func TestQuarantineCommands(t *testing.T) {
	bus := bustest.Start(t)
	bus.AddAgency("000.00.00.G22", "Văn phòng Chính phủ")
	bus.AddAgency("000.00.00.H41", "UBND tỉnh Nghệ An")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := bus.Client("000.00.00.G22").Send(ctx, envelope.New("000.00.00.G22", []string{"000.00.00.H41"}, "Bị từ chối"))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := bus.Client("000.00.00.H41").Mailbox(ctx, "000.00.00.H41")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Fetch(ctx, 1, time.Second, func(context.Context, *broker.Delivery) error {
		return errors.Join(broker.ErrReject, errors.New("đang bảo trì"))
	}); err != nil {
		t.Fatal(err)
	}
	out, errOut, ok := quarCLI(t, bus, "quarantine", "list", "--json")
	var q broker.Quarantined
	if !ok || json.Unmarshal([]byte(out), &q) != nil || q.Envelope != res.ID || q.OriginSeq == 0 || !strings.Contains(q.Reason, "đang bảo trì") {
		t.Fatalf("list: %s %s", out, errOut)
	}
	if out, errOut, ok := quarCLI(t, bus, "quarantine", "retry", res.ID); !ok || !strings.Contains(out, "re-driven "+res.ID) {
		t.Fatalf("retry: %s %s", out, errOut)
	}
	// An entry of the kind agencies could write before.
	m := nats.NewMsg(record.QuarantineSubject("000.00.00.H41"))
	m.Data = []byte(`{"id":"` + envelope.NewID() + `"}`)
	m.Header.Set(record.HeaderOriginSubject, record.DocSubject("000.00.00.H41", "000.00.00.G22"))
	ack, err := bus.Client().JetStream().PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	seq := strconv.FormatUint(ack.Sequence, 10)
	if out, errOut, ok := quarCLI(t, bus, "quarantine", "retry", seq); ok || !strings.Contains(errOut, "does not point into the record") {
		t.Fatalf("retry of an entry outside the record: %s %s", out, errOut)
	}
	if out, errOut, ok := quarCLI(t, bus, "quarantine", "drop", seq); !ok || !strings.Contains(out, "dropped quarantine seq "+seq) {
		t.Fatalf("drop: %s %s", out, errOut)
	}
	if _, errOut, _ := quarCLI(t, bus, "quarantine", "list"); !strings.Contains(errOut, "quarantine is empty") {
		t.Fatalf("list after drop: %s", errOut)
	}
}
