package httpapi_test

import (
	"bytes"
	"mime"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
	"github.com/docaxis/docaxis/signing"
)

// newAuthEnv is newEnv on a bus with authentication on, the server holding
// the bus's own connection as `docaxis serve` does.
func newAuthEnv(t *testing.T) *env {
	t.Helper()
	bus := bustest.Start(t, bustest.WithAuth())
	ctx := ctxT(t)
	for code, name := range agencyNames {
		id := bus.AddAgency(code, name)
		if err := bus.Service.Client.RegisterAgency(ctx, broker.Agency{Code: code, Name: name, Certificate: string(signing.EncodeCerts(id.Chain...))}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := broker.Connect(ctx, bus.URL(), broker.WithKeystore(bus.Keystore), broker.WithTrust(bus.Trust),
		broker.WithLogger(bustest.Logger()), broker.WithNATSOptions(bus.AdminOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	tokens, err := httpapi.OpenTokens(ctx, c.JetStream(), httpapi.TokensConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{Client: c, Auth: tokens, Logger: bustest.Logger(), Limits: httpapi.Limits{Rate: -1}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Drain)
	e := &env{t: t, bus: bus, client: c, srv: srv, ts: ts, tokens: tokens, tok: map[string]string{}, spec: loadSpec(t)}
	for _, a := range []string{govOffice, ngheAn, sonLa} {
		tok, _, err := tokens.Create(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		e.tok[a] = tok
	}
	return e
}

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
}

// A download's Content-Disposition names the file so that an RFC 6266
// reader (Go's mime package, a document system's HTTP client) reads the
// attachment's exact name back: '=' and '@' are allowed in names but are
// not attr-chars of RFC 8187, and left unescaped they make the whole
// header unreadable.
func TestAttachmentDownloadNameReadBack(t *testing.T) {
	e := newAuthEnv(t)
	const name = "Báo cáo quý=1@2026 (bản 2).txt"
	content := []byte("Nội dung báo cáo\n")
	res := e.post(govOffice, meta(`{"to":["`+ngheAn+`"],"subject":"Về việc gửi báo cáo quý"}`), file(name, content))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("send = %d %s", res.StatusCode, res.body)
	}
	var inbox struct{ Envelopes []envelopeJSON }
	e.do("GET", "/v1/inbox", ngheAn, nil).json(t, &inbox)
	if len(inbox.Envelopes) != 1 || len(inbox.Envelopes[0].Attachments) != 1 {
		t.Fatalf("inbox = %+v", inbox)
	}
	dl := e.do("GET", inbox.Envelopes[0].Attachments[0].URL, ngheAn, nil)
	if dl.StatusCode != http.StatusOK || !bytes.Equal(dl.body, content) {
		t.Fatalf("download = %d %q", dl.StatusCode, dl.body)
	}
	cd := dl.Header.Get("Content-Disposition")
	disp, params, err := mime.ParseMediaType(cd)
	if err != nil || disp != "attachment" || params["filename"] != name {
		t.Fatalf("Content-Disposition %q read as %q %q (%v), want the name %q", cd, disp, params["filename"], err, name)
	}
}
