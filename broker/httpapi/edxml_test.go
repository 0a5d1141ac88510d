package httpapi_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

func edxmlBody(t *testing.T, e *envelope.Envelope) *bytes.Reader {
	t.Helper()
	var buf bytes.Buffer
	if err := edxml.Write(&buf, e, nil); err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(buf.Bytes())
}

func TestEdXMLInAndOut(t *testing.T) {
	e := newEnv(t)
	const docID = "000.00.00.G22,2026/11/23,15/VPCP-TTĐT"
	doc := envelope.New(govOffice, []string{ngheAn}, "Về việc triển khai trục liên thông")
	doc.Document = &envelope.Document{CodeNumber: "15", CodeNotation: "VPCP-TTĐT", DocumentID: docID, PromulgationDate: "2026-11-23"}

	// Another agency cannot send a file that says it is from someone else.
	if res := e.do("POST", "/v1/edxml", sonLa, edxmlBody(t, doc), "Content-Type", "application/xml"); res.StatusCode != http.StatusForbidden {
		t.Fatalf("edXML from another agency: %d %s", res.StatusCode, res.body)
	}
	if res := e.do("POST", "/v1/edxml", govOffice, strings.NewReader("<edXML>không phải</edXML"), "Content-Type", "application/xml"); res.StatusCode != http.StatusBadRequest || res.errCode(t) != "bad_request" {
		t.Fatalf("malformed edXML: %d %s", res.StatusCode, res.body)
	}
	res := e.do("POST", "/v1/edxml", govOffice, edxmlBody(t, doc), "Content-Type", "application/xml")
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("send edXML: %d %s", res.StatusCode, res.body)
	}
	var sent struct{ Kind, ID string }
	res.json(t, &sent)
	if sent.Kind != "document" {
		t.Fatalf("sent %+v", sent)
	}

	out := e.do("GET", "/v1/envelopes/"+sent.ID+"/edxml", ngheAn, nil)
	if out.StatusCode != http.StatusOK || !strings.Contains(out.Header.Get("Content-Type"), "xml") {
		t.Fatalf("export: %d %s", out.StatusCode, out.body)
	}
	m, err := edxml.Parse(bytes.NewReader(out.body))
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := m.ToEnvelope(edxml.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != doc.Subject || got.Document.DocumentID != docID || got.From != govOffice {
		t.Fatalf("exported %+v", got)
	}
	if res := e.do("GET", "/v1/envelopes/"+sent.ID+"/edxml", sonLa, nil); res.StatusCode != http.StatusNotFound {
		t.Fatalf("export by a stranger: %d", res.StatusCode)
	}

	if res := e.do("POST", "/v1/inbox/"+sent.ID+"/ack", ngheAn, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("ack: %d %s", res.StatusCode, res.body)
	}
	st := envelope.NewStatus(ngheAn, govOffice, envelope.NewID(), envelope.StateAccepted)
	st.Status.Note = "Đã tiếp nhận"
	st.Extra = map[string]string{edxml.KeyResponseForDocumentID: docID}
	res = e.do("POST", "/v1/edxml", ngheAn, edxmlBody(t, st), "Content-Type", "application/xml")
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("send edXML status: %d %s", res.StatusCode, res.body)
	}
	var list []struct {
		State, Code, Recipient, EdXML string
	}
	for range 50 {
		r := e.do("GET", "/v1/envelopes/"+sent.ID+"/edxml/statuses", govOffice, nil)
		r.json(t, &list)
		if len(list) == 2 {
			break
		}
		time.Sleep(100 * time.Millisecond) // the tracker applies the status
	}
	if len(list) != 2 || list[0].Code != "01" || list[1].Code != "03" || !strings.Contains(list[1].EdXML, docID) {
		t.Fatalf("statuses %+v", list)
	}
}

// An edXML status answered 201 is tracked by then, as the JSON status
// route's: the next status, sent at once, is judged from a state that has
// it (accepted, then processing), not refused for the tracker's lag. The
// tracker is stopped while the first status is sent and started again a
// moment later.
func TestEdXMLStatusesOneAfterAnother(t *testing.T) {
	e := newAuthEnv(t)
	const docID = "000.00.00.G22,2026/12/05,21/VPCP-TTĐT"
	doc := envelope.New(govOffice, []string{ngheAn}, "Về việc báo cáo tình hình")
	doc.Document = &envelope.Document{CodeNumber: "21", CodeNotation: "VPCP-TTĐT", DocumentID: docID, PromulgationDate: "2026-12-05"}
	res := e.do("POST", "/v1/edxml", govOffice, edxmlBody(t, doc), "Content-Type", "application/xml")
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("send edXML: %d %s", res.StatusCode, res.body)
	}
	var sent struct{ ID string }
	res.json(t, &sent)
	if res := e.do("POST", "/v1/inbox/"+sent.ID+"/ack", ngheAn, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("ack: %d %s", res.StatusCode, res.body)
	}
	restarted := e.bus.LagTracker(t, 300*time.Millisecond)
	for _, state := range []envelope.State{envelope.StateAccepted, envelope.StateProcessing} {
		st := envelope.NewStatus(ngheAn, govOffice, envelope.NewID(), state)
		st.Extra = map[string]string{edxml.KeyResponseForDocumentID: docID}
		res := e.do("POST", "/v1/edxml", ngheAn, edxmlBody(t, st), "Content-Type", "application/xml")
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("send edXML status %s: %d %s", state, res.StatusCode, res.body)
		}
	}
	restarted()
}
