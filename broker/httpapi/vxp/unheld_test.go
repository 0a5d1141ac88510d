package vxp_test

import (
	"bytes"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/httpapi/vxp"
	"github.com/docaxis/docaxis/envelope"
)

// An agency that knows the hash of a file G22 sent to H14 signs an
// envelope of its own listing it (its own client publishes it: nothing
// stops a signer from listing any hash) and sends it to H41, whose system
// reads it through this API. The file's bytes never reach H41's system
// with it: getEdoc and downloadEdoc refuse the envelope (the bus never
// granted H41 access, its sender never held the bytes), as GET
// .../attachments does, instead of reading the store on the bus's own
// credentials.
func TestEdocOnlyWithAttachmentsItsSenderHeld(t *testing.T) {
	const nosy, other = "000.00.00.H99", "000.00.00.H14"
	b := newBench(t, false)
	b.bus.AddAgency(native, "Văn phòng Chính phủ")
	b.bus.AddAgency(nosy, "Cơ quan tò mò")
	b.bus.AddAgency(other, "UBND tỉnh Sơn La")
	sys := b.sdk("sys.a", b.addSystem("sys.a", provincial))
	ctx := ctxT(t)
	secret := []byte("Nội dung mật của Văn phòng Chính phủ")
	res, err := b.bus.Client(native).Send(ctx, envelope.New(native, []string{other}, "Công văn có tệp"),
		broker.File{Name: "mat.txt", Reader: bytes.NewReader(secret), Size: int64(len(secret))})
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, b.admin, res.ID, other, envelope.StateSent)
	tr, err := b.admin.Tracking(ctx, res.ID, other)
	if err != nil {
		t.Fatal(err)
	}
	genuine, err := b.admin.ReadEnvelope(ctx, tr.Seq)
	if err != nil || genuine.Envelope == nil || len(genuine.Envelope.Attachments) != 1 {
		t.Fatalf("G22's copy: %+v %v", genuine, err)
	}
	e := envelope.New(nosy, []string{provincial}, "Xin tệp của người khác")
	e.Attachments = genuine.Envelope.Attachments
	out, err := b.bus.Client(nosy).Send(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, b.admin, out.ID, provincial, envelope.StateSent)
	items := list(mustOK(t, "list", sys.call("getReceivedEdocList", listEdoc, nil)))
	if len(items) != 1 {
		t.Fatalf("listed %v, want H99's document", items)
	}
	for _, op := range []string{"getEdoc", "downloadEdoc"} {
		mustFail(t, op+" of an envelope listing bytes its sender never held", sys.call(op, map[string]any{"docId": out.ID}, []byte("{}")), vxp.CodeForbidden)
	}
}
