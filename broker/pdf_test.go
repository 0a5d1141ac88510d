package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing/pdf"
)

// A PDF signed by one agency and sent to another shows its verified signer
// in the recipient's delivery and in the sender's tracking.
func TestSignedPDFVerifiedOnReceipt(t *testing.T) {
	bus := threeAgencies(t)
	ctx := ctxT(t)
	var signed bytes.Buffer
	doc := pdf.Minimal("Quyết định phê duyệt")
	if err := pdf.Sign(context.Background(), bytes.NewReader(doc), int64(len(doc)), &signed, bus.Identity(govOffice), pdf.SignOptions{Reason: "Phê duyệt", Location: "Hà Nội"}); err != nil {
		t.Fatal(err)
	}
	sender := bus.Client(govOffice)
	res, err := sender.Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Quyết định có chữ ký số"),
		broker.File{Name: "qd.pdf", Reader: bytes.NewReader(signed.Bytes()), Size: int64(signed.Len())},
		broker.File{Name: "phu-luc.pdf", Reader: bytes.NewReader(doc), Size: int64(len(doc))})
	if err != nil {
		t.Fatal(err)
	}
	outs := receiveAll(t, bus.Client(ngheAn), ngheAn)
	if len(outs) != 1 || !outs[0].Verified {
		t.Fatalf("outcomes %+v", outs)
	}
	det, ok := outs[0].Delivery.Details["qd.pdf"].(broker.PDFDetails)
	if !ok || !det.OK || det.Report.Signatures[0].Agency != govOffice || !det.Report.Signatures[0].Trusted {
		t.Fatalf("details of the signed PDF: %+v", outs[0].Delivery.Details["qd.pdf"])
	}
	if det, _ := outs[0].Delivery.Details["phu-luc.pdf"].(broker.PDFDetails); det.OK || !strings.Contains(det.Error, "signature") {
		t.Fatalf("details of the unsigned PDF: %+v", det)
	}
	tr := waitState(t, sender, res.ID, ngheAn, envelope.StateDelivered)
	b, _ := json.Marshal(tr.Details)
	if !strings.Contains(string(b), `"agency":"`+govOffice+`"`) || !strings.Contains(string(b), `"trusted":true`) {
		t.Fatalf("sender's tracking details: %s", b)
	}
}

func TestRequireSignedPDF(t *testing.T) {
	bus := threeAgencies(t)
	doc := pdf.Minimal("Chưa ký")
	res, err := bus.Client(govOffice).Send(ctxT(t), envelope.New(govOffice, []string{ngheAn}, "Thiếu chữ ký số"),
		broker.File{Name: "cv.pdf", Reader: bytes.NewReader(doc), Size: int64(len(doc))})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	outs := receiveAll(t, bus.Client(ngheAn), ngheAn, broker.RequireSignedPDF(), broker.SaveAttachments(dir))
	if len(outs) != 1 || outs[0].Verified || !outs[0].Quarantined {
		t.Fatalf("outcomes %+v", outs)
	}
	tr := waitState(t, bus.Client(govOffice), res.ID, ngheAn, envelope.StateInvalid)
	if !strings.Contains(tr.Reason, "cv.pdf") || !strings.Contains(tr.Reason, "not signed") {
		t.Fatalf("reason %q", tr.Reason)
	}
}
