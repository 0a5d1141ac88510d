package broker_test

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

const (
	govOffice = "000.00.00.G22"
	ngheAn    = "000.00.00.H41"
	sonLa     = "000.00.00.H14"
)

func ctxT(t *testing.T) context.Context { return bustest.Context(t, 30*time.Second) }

// The fixtures shared with the bus's own tests.
var (
	receiveAll  = bustest.ReceiveAll
	waitTracked = bustest.WaitTracked
)

func waitState(t *testing.T, c *broker.Client, id, recipient string, want envelope.State) *broker.Tracking {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tr, err := c.WaitState(ctx, id, recipient, want)
	if err != nil {
		t.Fatalf("wait %s for %s: %v", want, recipient, err)
	}
	return tr
}

func TestSendToTwoDeliverAndLifecycle(t *testing.T) {
	bus := bustest.Start(t)
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	bus.AddAgency(sonLa, "UBND tỉnh Sơn La")
	sender := bus.Client(govOffice)
	ctx := ctxT(t)

	content := []byte("Nội dung công văn số 123")
	e := envelope.New(govOffice, []string{ngheAn, sonLa}, "Về việc thử nghiệm trục liên thông")
	e.Document = &envelope.Document{CodeNumber: "123", CodeNotation: "VPCP-TTĐT", DueDate: "2099-01-01"}
	res, err := sender.Send(ctx, e, broker.File{Name: "cv.txt", Reader: bytes.NewReader(content), Size: int64(len(content))})
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{ngheAn, sonLa} {
		waitState(t, sender, res.ID, who, envelope.StateSent)
	}

	for _, who := range []string{ngheAn, sonLa} {
		dir := t.TempDir()
		outs := receiveAll(t, bus.Client(who), who, broker.SaveAttachments(dir))
		if len(outs) != 1 || !outs[0].Verified || outs[0].ID != res.ID || outs[0].From != govOffice {
			t.Fatalf("%s outcomes = %+v", who, outs)
		}
		got, err := os.ReadFile(filepath.Join(dir, res.ID, "cv.txt"))
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("%s saved attachment = %q, %v", who, got, err)
		}
		tr := waitState(t, sender, res.ID, who, envelope.StateDelivered)
		if tr.History[1].State != envelope.StateDelivered {
			t.Fatalf("history = %+v", tr.History)
		}
	}

	rcpt := bus.Client(ngheAn)
	for _, s := range []envelope.State{envelope.StateAccepted, envelope.StateProcessing, envelope.StateDone} {
		if _, err := rcpt.Mark(ctx, ngheAn, res.ID, s, broker.MarkOptions{Note: "ghi chú " + string(s)}); err != nil {
			t.Fatalf("mark %s: %v", s, err)
		}
		waitState(t, sender, res.ID, ngheAn, s)
	}
	ds, err := sender.Status(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Recipients) != 2 || ds.Subject != e.Subject || ds.Sender != govOffice {
		t.Fatalf("status = %+v", ds)
	}
	for _, r := range ds.Recipients {
		want := map[string]envelope.State{ngheAn: envelope.StateDone, sonLa: envelope.StateDelivered}[r.Recipient]
		if r.State != want {
			t.Errorf("%s state = %s, want %s", r.Recipient, r.State, want)
		}
	}
	// done is terminal
	if _, err := rcpt.Mark(ctx, ngheAn, res.ID, envelope.StateAccepted, broker.MarkOptions{}); err == nil || !strings.Contains(err.Error(), "current state is done") {
		t.Fatalf("mark after done: %v", err)
	}
}
