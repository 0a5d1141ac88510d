package vxp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

const (
	edocFrom   = "002.00.20.H13" // From/OrganId of edoc.edxml
	edocTo     = "000.00.15.H51" // its To/OrganId
	edocDocID  = "9fbfbad2-f1f8-4256-a2eb-50fb1061cddb"
	sampleDoc  = "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT" // the statuses' ResponseFor/DocumentId
	native     = "000.00.00.G22"
	provincial = "000.00.00.H41"
)

var (
	listEdoc   = map[string]any{"servicetype": "eDoc", "messagetype": "edoc"}
	listStatus = map[string]any{"servicetype": "eDoc", "messagetype": "status"}
)

func decodeEdXML(t *testing.T, a map[string]any) *edxml.Message {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(fmt.Sprint(a["data"]))
	if err != nil {
		t.Fatalf("getEdoc data is not base64: %v", err)
	}
	m, err := edxml.Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("getEdoc data is not edXML: %v\n%s", err, raw)
	}
	return m
}

func waitState(t *testing.T, c *broker.Client, id, recipient string, st envelope.State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.WaitState(ctx, id, recipient, st); err != nil {
		t.Fatalf("%s for %s: want %s: %v", id, recipient, st, err)
	}
}

// Two document systems on SDKVXP exchange a real edXML document, fetch,
// fail, acknowledge, answer with a status and follow it.
func TestSystemToSystem(t *testing.T) {
	b := newBench(t, false)
	a := b.sdk("sys.a", b.addSystem("sys.a", edocFrom))
	bb := b.sdk("sys.b", b.addSystem("sys.b", edocTo))
	file := testdata(t, "edoc.edxml")
	orig, err := edxml.Parse(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}

	res := mustOK(t, "sendEdoc", a.sendEdoc(map[string]any{"from": edocFrom, "servicetype": "eDoc", "messagetype": "edoc"}, file))
	id := fmt.Sprint(res["DocId"])
	if !envelope.IsID(id) {
		t.Fatalf("DocId %q", id)
	}
	// The same signed call again (the SDK's retry after an I/O error, or
	// a replay) sends nothing twice.
	again := mustOK(t, "sendEdoc retry", a.sendEdoc(map[string]any{"from": edocFrom, "servicetype": "eDoc", "messagetype": "edoc"}, file))
	if again["DocId"] != res["DocId"] {
		t.Fatalf("retry sent %v, first %v", again["DocId"], id)
	}
	waitState(t, b.admin, id, edocTo, envelope.StateSent)

	items := list(mustOK(t, "getReceivedEdocList", bb.call("getReceivedEdocList", listEdoc, nil)))
	if len(items) != 1 || items[0]["docId"] != id || items[0]["from"] != edocFrom || items[0]["to"] != edocTo {
		t.Fatalf("received list: %v", items)
	}
	if n := mustOK(t, "countReceiveEdoc", bb.call("countReceiveEdoc", nil, []byte("{}")))["count"]; fmt.Sprint(n) != "1" {
		t.Fatalf("count %v", n)
	}
	if items := list(mustOK(t, "list of sys.a", a.call("getReceivedEdocList", listEdoc, nil))); len(items) != 0 {
		t.Fatalf("sys.a sees %v", items)
	}

	got := decodeEdXML(t, mustOK(t, "getEdoc", bb.call("getEdoc", map[string]any{"filePath": t.TempDir(), "docId": id}, []byte("{}"))))
	if got.IsStatus() || got.Document().MessageHeader.Subject != orig.Document().MessageHeader.Subject {
		t.Fatalf("getEdoc subject %q, sent %q", got.Document().MessageHeader.Subject, orig.Document().MessageHeader.Subject)
	}
	if len(got.Document().Attachments) < len(orig.Document().Attachments) {
		t.Fatalf("getEdoc: %d attachments, sent %d", len(got.Document().Attachments), len(orig.Document().Attachments))
	}

	// fail keeps it waiting and counted; the leaked status key is no filter.
	mustOK(t, "updateStatus fail", bb.call("updateStatus", map[string]any{"status": "fail", "docId": id}, []byte("{}")))
	items = list(mustOK(t, "list after fail", bb.call("getReceivedEdocList", listEdoc, nil)))
	if len(items) != 1 || items[0]["status"] != "fail" {
		t.Fatalf("after fail: %v", items)
	}
	mustOK(t, "updateStatus done", bb.call("updateStatus", map[string]any{"status": "done", "docid": id}, []byte("{}")))
	waitState(t, b.admin, id, edocTo, envelope.StateDelivered)
	if items := list(mustOK(t, "list after done", bb.call("getReceivedEdocList", listEdoc, nil))); len(items) != 0 {
		t.Fatalf("after done: %v", items)
	}
	// done again, or getEdoc after done: not waiting any more.
	mustFail(t, "getEdoc after done", bb.call("getEdoc", map[string]any{"docId": id}, []byte("{}")), "404")

	// The sender's system sees the delivered receipt as status 01.
	sts := list(mustOK(t, "status list", a.call("getReceivedEdocList", listStatus, nil)))
	if len(sts) != 1 {
		t.Fatalf("statuses for sys.a: %v", sts)
	}
	st := decodeEdXML(t, mustOK(t, "getEdoc status", a.call("getEdoc", map[string]any{"docId": sts[0]["docId"]}, []byte("{}"))))
	if !st.IsStatus() || st.Status().MessageHeader.StatusCode != "01" || st.Status().MessageHeader.ResponseFor.DocumentID != edocDocID {
		t.Fatalf("status 01: %+v", st.Status())
	}
	mustOK(t, "status done", a.call("updateStatus", map[string]any{"status": "done", "docId": sts[0]["docId"]}, []byte("{}")))

	// The recipient's system answers with a real status file: 02.
	status := testdata(t, "status_rejection_02.edxml", sampleDoc, edocDocID, provincial, edocTo, native, edocFrom)
	mustOK(t, "sendEdoc status", bb.sendEdoc(map[string]any{"from": "sys.b", "servicetype": "eDoc", "messagetype": "status"}, status))
	waitState(t, b.admin, id, edocTo, envelope.StateRejected)
	sts = list(mustOK(t, "status list 2", a.call("getReceivedEdocList", listStatus, nil)))
	if len(sts) != 1 || !strings.Contains(fmt.Sprint(sts[0]["status_desc"]), "02") {
		t.Fatalf("statuses: %v", sts)
	}
	if n := mustOK(t, "countReceiveStatus", a.call("countReceiveStatus", nil, []byte("{}")))["count"]; fmt.Sprint(n) != "1" {
		t.Fatalf("count %v", n)
	}

	sent := list(mustOK(t, "getSentEdocList", a.call("getSentEdocList", map[string]any{"servicetype": "eDoc", "messagetype": "edoc", "docId": id}, nil)))
	if len(sent) != 1 || sent[0]["toCode"] != edocTo || sent[0]["fromCode"] != edocFrom || sent[0]["receiveStatus"] != "02" || sent[0]["senderDocId"] != id {
		t.Fatalf("sent list: %v", sent)
	}
	// The recipient's system does not follow the sender's document.
	mustFail(t, "getSentEdocList of another", bb.call("getSentEdocList", map[string]any{"docId": id}, nil), "404")
}

// A native agency (Go client) and a system on SDKVXP, both ways, with
// attachments.
func TestNativeAndSystem(t *testing.T) {
	b := newBench(t, false)
	b.bus.AddAgency(native, "Văn phòng Chính phủ")
	sys := b.sdk("sys.h41", b.addSystem("sys.h41", provincial))
	ctx := ctxT(t)
	g := b.bus.Client(native)

	// native → system
	content := "Nội dung đính kèm " + envelope.NewID()
	sent, err := g.Send(ctx, envelope.New(native, []string{provincial}, "Công văn gửi tỉnh"),
		broker.File{Name: "dinh-kem.txt", Reader: strings.NewReader(content), Size: int64(len(content))})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, b.admin, sent.ID, provincial, envelope.StateSent)
	items := list(mustOK(t, "list", sys.call("getReceivedEdocList", listEdoc, nil)))
	if len(items) != 1 || items[0]["docId"] != sent.ID || items[0]["from"] != native {
		t.Fatalf("list: %v", items)
	}
	doc := decodeEdXML(t, mustOK(t, "getEdoc", sys.call("getEdoc", map[string]any{"filePath": t.TempDir(), "docId": sent.ID}, []byte("{}"))))
	if doc.IsStatus() || doc.Document().MessageHeader.From.OrganID != native {
		t.Fatalf("edXML from %q", doc.Document().MessageHeader.From.OrganID)
	}
	found := false
	for _, att := range doc.Document().Attachments {
		rc, err := att.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		found = found || string(b) == content
	}
	if !found {
		t.Fatalf("the attachment did not come through: %+v", doc.Document().Attachments)
	}
	mustOK(t, "done", sys.call("updateStatus", map[string]any{"status": "done", "docId": sent.ID}, []byte("{}")))
	waitState(t, b.admin, sent.ID, provincial, envelope.StateDelivered)
	// The system answers with status files (03, then the real 05), naming
	// the document by the DocumentId its edXML carried.
	accept, err := os.ReadFile(filepath.Join("..", "..", "..", "envelope", "edxml", "testdata", "status_03_acceptance.edxml"))
	if err != nil {
		t.Fatal(err)
	}
	accept = bytes.ReplaceAll(accept, []byte(edocDocID), []byte(doc.Document().MessageHeader.DocumentID))
	mustOK(t, "sendEdoc 03", sys.sendEdoc(map[string]any{"from": provincial, "servicetype": "eDoc", "messagetype": "status"}, accept))
	waitState(t, b.admin, sent.ID, provincial, envelope.StateAccepted)
	status := testdata(t, "status_processing_05.edxml", sampleDoc, doc.Document().MessageHeader.DocumentID)
	mustOK(t, "sendEdoc 05", sys.sendEdoc(map[string]any{"from": provincial, "servicetype": "eDoc", "messagetype": "status"}, status))
	waitState(t, b.admin, sent.ID, provincial, envelope.StateProcessing)

	// system → native
	file := testdata(t, "edoc.edxml", edocFrom, provincial, edocTo, native)
	res := mustOK(t, "sendEdoc", sys.sendEdoc(map[string]any{"from": "sys.h41", "servicetype": "eDoc", "messagetype": "edoc"}, file))
	id := fmt.Sprint(res["DocId"])
	mb, err := g.Mailbox(ctx, native)
	if err != nil {
		t.Fatal(err)
	}
	var got *envelope.Envelope
	for got == nil && ctx.Err() == nil {
		if _, err := mb.Fetch(ctx, 10, 2*time.Second, func(_ context.Context, d *broker.Delivery) error {
			if d.Envelope.ID == id {
				got = d.Envelope
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if got == nil || got.From != provincial || len(got.Attachments) == 0 {
		t.Fatalf("native received %+v", got)
	}
	hasOriginal := false
	for _, a := range got.Attachments {
		hasOriginal = hasOriginal || strings.HasSuffix(a.Name, ".edxml")
	}
	if !hasOriginal {
		t.Fatalf("attachments %+v: the original edXML is missing", got.Attachments)
	}
	waitState(t, b.admin, id, native, envelope.StateDelivered)
	if _, err := g.Mark(ctx, native, id, envelope.StateAccepted, broker.MarkOptions{Note: "Đã tiếp nhận"}); err != nil {
		t.Fatal(err)
	}
	waitState(t, b.admin, id, native, envelope.StateAccepted)
	var codes []string
	for _, s := range list(mustOK(t, "status list", sys.call("getReceivedEdocList", listStatus, nil))) {
		m := decodeEdXML(t, mustOK(t, "getEdoc status", sys.call("getEdoc", map[string]any{"docId": s["docId"]}, []byte("{}"))))
		codes = append(codes, m.Status().MessageHeader.StatusCode)
	}
	if strings.Join(codes, ",") != "01,03" {
		t.Fatalf("status codes %v, want 01,03", codes)
	}
	sentList := list(mustOK(t, "getSentEdocList", sys.call("getSentEdocList", map[string]any{"docId": id}, nil)))
	if len(sentList) != 1 || sentList[0]["receiveStatus"] != "03" || sentList[0]["toCode"] != native {
		t.Fatalf("sent list: %v", sentList)
	}
}

// A system of 200 agencies: mail for several of them waits in one list,
// each item naming its agency; done on each empties it.
func TestManyAgencies(t *testing.T) {
	b := newBench(t, false)
	b.bus.AddAgency(native, "Văn phòng Chính phủ")
	var codes []string
	for i := range 200 {
		codes = append(codes, fmt.Sprintf("000.%02d.%02d.H41", i/100+1, i%100))
	}
	sec := b.addSystem("sys.province")
	lines := make([]broker.ImportLine, 0, len(codes))
	for _, c := range codes {
		lines = append(lines, broker.ImportLine{Agency: broker.Agency{Code: c, Name: "Xã " + c, System: "sys.province"}, Fields: []string{"system"}})
	}
	if res, err := b.admin.ImportAgencies(ctxT(t), lines, broker.ImportOptions{Bind: b.bus.CA.SignBinding}); err != nil || len(res.Errors) > 0 {
		t.Fatalf("import: %v %+v", err, res)
	}
	ctx := ctxT(t)
	g := b.bus.Client(native)
	want := map[string]string{}
	for _, to := range []string{codes[0], codes[77], codes[199]} {
		res, err := g.Send(ctx, envelope.New(native, []string{to}, "Gửi "+to))
		if err != nil {
			t.Fatal(err)
		}
		want[res.ID] = to
		waitState(t, b.admin, res.ID, to, envelope.StateSent)
	}
	sys := b.sdk("sys.province", sec)
	items := list(mustOK(t, "list", sys.call("getReceivedEdocList", listEdoc, nil)))
	if len(items) != len(want) {
		t.Fatalf("%d items, want %d: %v", len(items), len(want), items)
	}
	for _, it := range items {
		id := fmt.Sprint(it["docId"])
		if want[id] != it["to"] {
			t.Fatalf("item %v: want to %s", it, want[id])
		}
		mustOK(t, "done", sys.call("updateStatus", map[string]any{"status": "done", "docId": id}, []byte("{}")))
		waitState(t, b.admin, id, want[id], envelope.StateDelivered)
	}
	if n := mustOK(t, "count", sys.call("countReceiveEdoc", nil, []byte("{}")))["count"]; fmt.Sprint(n) != "0" {
		t.Fatalf("count after done: %v", n)
	}
}
