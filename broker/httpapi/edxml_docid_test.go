package httpapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

// An edXML DocumentId is printed on the document: every recipient knows
// it. Another agency sending a document of its own under the same
// DocumentId must not take it over: the statuses that answer the first
// sender's document (ResponseFor names its OrganId) still reach it, not
// the one who reused the id.
func TestEdXMLDocumentIDNotTakenOverByAnotherSender(t *testing.T) {
	e := newAuthEnv(t)
	const docID = "000.00.00.G22,2026/11/23,16/VPCP-TTĐT"
	send := func(from, subject string) string {
		t.Helper()
		doc := envelope.New(from, []string{ngheAn}, subject)
		doc.Document = &envelope.Document{CodeNumber: "16", CodeNotation: "VPCP-TTĐT", DocumentID: docID, PromulgationDate: "2026-11-23"}
		res := e.do("POST", "/v1/edxml", from, edxmlBody(t, doc), "Content-Type", "application/xml")
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("send edXML as %s: %d %s", from, res.StatusCode, res.body)
		}
		var sent struct{ ID string }
		res.json(t, &sent)
		return sent.ID
	}
	genuine := send(govOffice, "Về việc triển khai trục liên thông")
	// Sơn La sends Nghệ An a document of its own under the government
	// office's DocumentId.
	decoy := send(sonLa, "Về việc triển khai trục liên thông (bản khác)")
	// Nghệ An receives both.
	for _, id := range []string{genuine, decoy} {
		if res := e.do("POST", "/v1/inbox/"+id+"/ack", ngheAn, nil); res.StatusCode != http.StatusOK {
			t.Fatalf("ack %s: %d %s", id, res.StatusCode, res.body)
		}
	}

	// Nghệ An accepts the government office's document, naming it as
	// edXML statuses do: the sender's OrganId and the DocumentId.
	st := envelope.NewStatus(ngheAn, govOffice, envelope.NewID(), envelope.StateAccepted)
	st.Status.Note = "Đã tiếp nhận, chuyển Sở Nội vụ"
	st.Extra = map[string]string{edxml.KeyResponseForDocumentID: docID}
	res := e.do("POST", "/v1/edxml", ngheAn, edxmlBody(t, st), "Content-Type", "application/xml")
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("send edXML status: %d %s", res.StatusCode, res.body)
	}
	var got struct{ Of string }
	res.json(t, &got)
	if got.Of != genuine {
		t.Fatalf("Nghệ An's status on the government office's document %s went to %s (Sơn La's decoy %s)", genuine, got.Of, decoy)
	}

	// What a bus remembered before ids were kept per sender (keyed by the
	// DocumentId alone, the last sender's envelope) still answers, but
	// only for the sender that envelope is bound to.
	const oldDocID = "000.00.00.G22,2026/11/20,12/VPCP-TTĐT"
	kv, err := e.client.JetStream().KeyValue(ctxT(t), broker.DocIDBucket)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(oldDocID))
	for _, c := range []struct {
		remembered, want string
	}{
		{decoy, ""}, // Sơn La's envelope: not the government office's document
		{genuine, genuine},
	} {
		if _, err := kv.Put(ctxT(t), hex.EncodeToString(sum[:]), []byte(c.remembered)); err != nil {
			t.Fatal(err)
		}
		st := envelope.NewStatus(ngheAn, govOffice, envelope.NewID(), envelope.StateProcessing)
		st.Extra = map[string]string{edxml.KeyResponseForDocumentID: oldDocID}
		res := e.do("POST", "/v1/edxml", ngheAn, edxmlBody(t, st), "Content-Type", "application/xml")
		var got struct{ Of string }
		if res.StatusCode == http.StatusCreated {
			res.json(t, &got)
		}
		if got.Of != c.want {
			t.Errorf("old entry naming %s: status of %q (%d %s), want %q", c.remembered, got.Of, res.StatusCode, res.body, c.want)
		}
	}
}
