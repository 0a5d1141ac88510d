package vxp_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"

	"github.com/docaxis/docaxis/broker/httpapi/vxp"
	"github.com/docaxis/docaxis/envelope"
)

// An agency moves from system A to system B (the operator serves it by
// B) with a document A had listed and not yet taken: A can no longer
// read it, download it or acknowledge it (which would sign the delivered
// receipt with B's key); it is not listed for A any more, and B takes it.
func TestMovedAgencyNotReadableByItsOldSystem(t *testing.T) {
	b, a, bb := moveBench(t)
	ctx := ctxT(t)
	res, err := b.bus.Client(native).Send(ctx, envelope.New(native, []string{provincial}, "Công văn trước khi chuyển"))
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, b.admin, res.ID, provincial, envelope.StateSent)
	if items := list(mustOK(t, "list A", a.call("getReceivedEdocList", listEdoc, nil))); len(items) != 1 {
		t.Fatalf("A lists %v, want the document", items)
	}

	b.serve("sys.b", provincial)
	if got, err := b.admin.LookupAgency(ctx, provincial); err != nil || got.System != "sys.b" {
		t.Fatalf("move: %+v %v", got, err)
	}
	for _, tc := range []struct {
		op     string
		status string
	}{
		{"getEdoc", ""},
		{"downloadEdoc", ""},
		{"updateStatus", "processing"},
		{"updateStatus", "done"},
	} {
		h := map[string]any{"docId": res.ID}
		if tc.status != "" {
			h["status"] = tc.status
		}
		mustFail(t, "A's "+strings.TrimSpace(tc.op+" "+tc.status)+" after the move", a.call(tc.op, h, []byte("{}")), vxp.CodeNotFound)
	}
	if items := list(mustOK(t, "list A", a.call("getReceivedEdocList", listEdoc, nil))); len(items) != 0 {
		t.Errorf("A still lists %v after the move", items)
	}
	if tr, err := b.admin.Tracking(ctx, res.ID, provincial); err != nil || tr.State != envelope.StateSent {
		t.Fatalf("after A's attempts: %+v %v, want still sent", tr, err)
	}

	items := list(mustOK(t, "list B", bb.call("getReceivedEdocList", listEdoc, nil)))
	if len(items) != 1 || items[0]["docId"] != res.ID {
		t.Fatalf("B lists %v, want %s", items, res.ID)
	}
	mustOK(t, "getEdoc B", bb.call("getEdoc", map[string]any{"docId": res.ID}, []byte("{}")))
	mustOK(t, "done B", bb.call("updateStatus", map[string]any{"status": "done", "docId": res.ID}, []byte("{}")))
	waitState(t, b.admin, res.ID, provincial, envelope.StateDelivered)
}

// An agency's mail that its system took and acknowledged stays taken when
// the agency moves to another system: the new system's transfer consumer
// reads the agency's mail again from the start of the record, and what
// was handed over before (its received marker) is not listed again. Mail
// not taken yet is.
func TestMovedAgencyHistoryNotListedAgain(t *testing.T) {
	b, a, bb := moveBench(t)
	ctx := ctxT(t)
	g := b.bus.Client(native)
	taken, err := g.Send(ctx, envelope.New(native, []string{provincial}, "Đã nhận từ lâu"))
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, b.admin, taken.ID, provincial, envelope.StateSent)
	list(mustOK(t, "list A", a.call("getReceivedEdocList", listEdoc, nil)))
	mustOK(t, "getEdoc A", a.call("getEdoc", map[string]any{"docId": taken.ID}, []byte("{}")))
	mustOK(t, "done A", a.call("updateStatus", map[string]any{"status": "done", "docId": taken.ID}, []byte("{}")))
	waitState(t, b.admin, taken.ID, provincial, envelope.StateDelivered)
	waiting, err := g.Send(ctx, envelope.New(native, []string{provincial}, "Chưa nhận"))
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, b.admin, waiting.ID, provincial, envelope.StateSent)

	b.serve("sys.b", provincial)
	items := list(mustOK(t, "list B", bb.call("getReceivedEdocList", listEdoc, nil)))
	if len(items) != 1 || items[0]["docId"] != waiting.ID {
		t.Errorf("B lists %v, want only %s (%s was delivered before the move)", items, waiting.ID, taken.ID)
	}
	if n := mustOK(t, "count B", bb.call("countReceiveEdoc", listEdoc, []byte("{}")))["count"]; n != float64(1) {
		t.Errorf("B counts %v, want 1", n)
	}
}

// The same for statuses: one the agency's system took (updateStatus done)
// before the agency moved is not listed again for its new system, whose
// status consumer reads the agency's statuses from the start; one it had
// not taken is.
func TestMovedAgencyStatusesNotListedAgain(t *testing.T) {
	b, a, bb := moveBench(t)
	ctx := ctxT(t)
	g := b.bus.Client(native)
	file := testdata(t, "edoc.edxml", edocFrom, provincial, edocTo, native)
	id := fmt.Sprint(mustOK(t, "sendEdoc", a.sendEdoc(map[string]any{"from": provincial, "servicetype": "eDoc", "messagetype": "edoc"}, file))["DocId"])
	mb, err := g.Mailbox(ctx, native)
	if err != nil {
		t.Fatal(err)
	}
	for got := false; !got && ctx.Err() == nil; {
		if _, err := mb.Fetch(ctx, 10, 2*time.Second, func(_ context.Context, d *broker.Delivery) error {
			got = got || d.Envelope.ID == id
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, b.admin, id, native, envelope.StateDelivered)
	taken := list(mustOK(t, "status list A", a.call("getReceivedEdocList", listStatus, nil)))
	if len(taken) != 1 {
		t.Fatalf("A lists statuses %v, want the delivered one", taken)
	}
	mustOK(t, "done A", a.call("updateStatus", map[string]any{"status": "done", "docId": taken[0]["docId"]}, []byte("{}")))
	if _, err := g.Mark(ctx, native, id, envelope.StateAccepted, broker.MarkOptions{Note: "Đã tiếp nhận"}); err != nil {
		t.Fatal(err)
	}
	waitState(t, b.admin, id, native, envelope.StateAccepted)

	b.serve("sys.b", provincial)
	again := list(mustOK(t, "status list B", bb.call("getReceivedEdocList", listStatus, nil)))
	if len(again) != 1 || again[0]["docId"] == taken[0]["docId"] || !strings.Contains(fmt.Sprint(again[0]["status_desc"]), "status 03") {
		t.Errorf("B lists statuses %v, want only the acceptance (03); A took %v before the move", again, taken[0]["docId"])
	}
}

// moveBench is a bus with the native agency, system sys.a serving the
// provincial agency (a), and system sys.b serving none yet (bb), where
// the tests move the provincial agency.
func moveBench(t *testing.T) (*bench, *sdk, *sdk) {
	t.Helper()
	b := newBench(t, false)
	b.bus.AddAgency(native, "Văn phòng Chính phủ")
	return b, b.sdk("sys.a", b.addSystem("sys.a", provincial)), b.sdk("sys.b", b.addSystem("sys.b"))
}
