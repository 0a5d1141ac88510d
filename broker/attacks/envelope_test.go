package attacks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// Attacks on what an envelope carries: attachment names a recipient would
// save somewhere else or as something else than they show, signed JSON
// that two readers read two ways, edXML files made to exhaust memory.

// envelopeRawSend signs payload with the attacker's own key, exactly as
// given (no validation), and publishes it with a plain nats.go connection
// and the attacker's credentials into the victim recipient's mailbox.
func (a *arena) envelopeRawSend(payload []byte, id string) {
	a.t.Helper()
	ident := a.bus.Identity(attacker)
	raw, err := envelope.Sign(payload, ident.Key, ident.Chain)
	if err != nil {
		a.t.Fatal(err)
	}
	a.jwsRawSend(raw, id)
}

// envelopeAttackerFile stores content through the attacker's own client
// under a harmless name and returns the manifest entry, for the attacker
// to rename in an envelope it signs itself.
func (a *arena) envelopeAttackerFile(content string) envelope.Attachment {
	a.t.Helper()
	att, err := a.client(attacker).PutAttachment(ctxT(a.t), broker.File{Name: "ok.txt", Reader: strings.NewReader(content), Size: int64(len(content))})
	if err != nil {
		a.t.Fatal(err)
	}
	return att
}

// envelopeReceive drains the victim recipient's mailbox, saving into dir,
// and returns the outcomes and the envelopes handed to the application.
func (a *arena) envelopeReceive(dir string) ([]broker.Outcome, []string) {
	a.t.Helper()
	var outs []broker.Outcome
	var handed []string
	mb, err := a.client(victimRecipient).Mailbox(ctxT(a.t), victimRecipient, broker.SaveAttachments(dir),
		broker.OnOutcome(func(o broker.Outcome) { outs = append(outs, o) }))
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := mb.Fetch(ctxT(a.t), 0, time.Second, func(_ context.Context, d *broker.Delivery) error {
		handed = append(handed, d.Envelope.ID)
		return nil
	}); err != nil {
		a.t.Fatal(err)
	}
	return outs, handed
}

// envelopeReceipts reads, as the bus, the statuses reporter recorded for
// sender, by the envelope they are about: only those that verify.
func (a *arena) envelopeReceipts(sender, reporter string) map[string]*envelope.Status {
	a.t.Helper()
	ctx := ctxT(a.t)
	js := a.admin.JetStream()
	cons, err := js.OrderedConsumer(ctx, record.Stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{record.StatusSubject(sender, reporter)}})
	if err != nil {
		a.t.Fatal(err)
	}
	out := map[string]*envelope.Status{}
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return out // no more within a second
		}
		v := signing.Verifier{Trust: a.bus.Trust}
		s, err := v.Verify(msg.Data())
		if err != nil || s.Envelope.Status == nil || s.Envelope.From != reporter {
			continue
		}
		out[s.Envelope.Status.Of] = s.Envelope.Status
	}
}

// envelopeFiles lists every file under root.
func envelopeFiles(t *testing.T, root string) []string {
	var files []string
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	return files
}

// A properly signed envelope from H99 whose attachment name is refused at
// send (bidi override, device name, a path out of the save folder) is an
// invalid envelope at H14: invalid receipt, quarantine, nothing handed over,
// nothing written, in the save folder or beside it.
func TestAttackAttachmentNamesOnReceipt(t *testing.T) {
	a := newArena(t)
	content := "MZ\x90\x00 giả làm PDF"
	att := a.envelopeAttackerFile(content)
	names := []string{
		"hoá đơn\u202Efdp.exe", // shows as "hoá đơnexe.pdf"
		"\u2067Báo cáo\u2069.pdf",
		"CON",
		"nul.txt",
		"Com1.pdf",
		"../x",
		`..\x`,
		"../../../../../../tmp/docaxis-escaped",
		"report.pdf.",
		"a.pdf:Zone.Identifier",
		"..",
	}
	root := t.TempDir()
	save := filepath.Join(root, "save")
	var ids []string
	for _, name := range names {
		e := envelope.New(attacker, []string{victimRecipient}, "Công văn khẩn")
		bad := att
		bad.Name = name
		e.Attachments = []envelope.Attachment{bad}
		payload, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		a.envelopeRawSend(payload, e.ID)
		ids = append(ids, e.ID)
	}
	outs, handed := a.envelopeReceive(save)
	if len(handed) != 0 {
		t.Errorf("handed to the application: %v", handed)
	}
	refused := map[string]string{}
	for _, o := range outs {
		if !o.Quarantined || o.Verified {
			t.Errorf("envelope %s: outcome %+v, want quarantined", o.ID, o)
		}
		refused[o.ID] = o.Error
	}
	for i, id := range ids {
		if reason, ok := refused[id]; !ok || !strings.Contains(reason, "attachments[0].name") {
			t.Errorf("name %q (envelope %s): refusal %q, want one naming the attachment", names[i], id, reason)
		}
	}
	if files := envelopeFiles(t, root); len(files) != 0 {
		t.Errorf("files written: %q", files)
	}
	if _, err := os.Stat("/tmp/docaxis-escaped"); err == nil {
		t.Errorf("a file was written outside the save folder")
	}
	// The sender hears why, through a signed invalid receipt on record.
	receipts := a.envelopeReceipts(attacker, victimRecipient)
	for _, id := range ids {
		if st := receipts[id]; st == nil || st.State != envelope.StateInvalid || !strings.Contains(st.Reason, "attachment name") {
			t.Errorf("envelope %s: receipt %+v, want invalid naming the attachment", id, st)
		}
	}
	q, err := a.admin.QuarantineList(ctxT(t), victimRecipient)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != len(names) {
		t.Errorf("%d quarantined, want %d", len(q), len(names))
	}
}

// A signed payload with a key twice, or twice in different case, reads one
// way to encoding/json (last one, any case) and another way to other JSON
// readers: it verifies as nothing.
func TestAttackDuplicateKeysInSignedPayload(t *testing.T) {
	a := newArena(t)
	tests := []struct{ name, find, replace string }{
		{"subject twice", `"subject":`, `"subject":"Giấy mời họp","subject":`},
		{"Subject after subject", `"created":`, `"Subject":"Lệnh chuyển tiền khẩn","created":`},
		{"To beside to", `"created":`, `"To":["` + attacker2 + `"],"created":`},
		{"kind with a Kelvin sign", `"created":`, `"\u212Aind":"revoke","created":`},
		{"From spelled in capitals", `"from":`, `"From":`},
		{"nested: attachment name twice", `"media_type":`, `"NAME":"CON","media_type":`},
	}
	att := a.envelopeAttackerFile("nội dung")
	var ids []string
	for _, tc := range tests {
		e := envelope.New(attacker, []string{victimRecipient}, "Giấy mời họp")
		e.Attachments = []envelope.Attachment{att}
		payload, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		tampered := strings.Replace(string(payload), tc.find, tc.replace, 1)
		if tampered == string(payload) {
			t.Fatalf("%s: payload unchanged", tc.name)
		}
		a.envelopeRawSend([]byte(tampered), e.ID)
		ids = append(ids, e.ID)
	}
	outs, handed := a.envelopeReceive(t.TempDir())
	if len(handed) != 0 {
		t.Errorf("handed to the application: %v", handed)
	}
	byID := map[string]broker.Outcome{}
	for _, o := range outs {
		byID[o.ID] = o
	}
	receipts := a.envelopeReceipts(attacker, victimRecipient)
	for i, id := range ids {
		o, ok := byID[id]
		if !ok || !o.Quarantined || o.Verified || !strings.Contains(o.Error, "JSON key") {
			t.Errorf("%s: outcome %+v, want quarantined for its JSON keys", tests[i].name, o)
		}
		if st := receipts[id]; st == nil || st.State != envelope.StateInvalid || !strings.Contains(st.Reason, "JSON key") {
			t.Errorf("%s: receipt %+v, want invalid for its JSON keys", tests[i].name, st)
		}
	}

	// Over HTTP, as a DMS-signed envelope: refused before anything is sent.
	e := envelope.New(attacker, []string{victimRecipient}, "Giấy mời họp")
	payload, _ := json.Marshal(e)
	ident := a.bus.Identity(attacker)
	raw, err := envelope.Sign([]byte(strings.Replace(string(payload), `"subject":`, `"subject":"x","Subject":`, 1)), ident.Key, ident.Chain)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	pw, _ := mw.CreateFormField("signed")
	pw.Write(raw)
	mw.Close()
	resp, b := a.do(attacker, "POST", "/v1/envelopes", &body, "Content-Type", mw.FormDataContentType())
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(b), "JSON key") {
		t.Errorf("HTTP signed part with duplicate keys: %d %s", resp.StatusCode, b)
	}
	if resp, b := a.do(victimRecipient, "GET", "/v1/envelopes/"+e.ID, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the refused envelope is visible: %d %s", resp.StatusCode, b)
	}
}

// Attachment names refused over HTTP, naming the file, before anything is
// sent.
func TestAttackAttachmentNamesOverHTTP(t *testing.T) {
	a := newArena(t)
	for _, name := range []string{"CON.pdf", "lpt1", "hợp đồng\u202Efdp.exe", "a\u200Bb.pdf", "x.pdf.", "a:b"} {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		meta, _ := json.Marshal(map[string]any{"to": []string{victimRecipient}, "subject": "Tên tệp"})
		mf, _ := mw.CreateFormField("meta")
		mf.Write(meta)
		fw, _ := mw.CreateFormFile("file", name)
		fw.Write([]byte("nội dung"))
		mw.Close()
		resp, b := a.do(attacker, "POST", "/v1/envelopes", &body, "Content-Type", mw.FormDataContentType())
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "attachment name") {
			t.Errorf("file %q: %d %s", name, resp.StatusCode, b)
		}
	}
	if outs, _ := a.envelopeReceive(t.TempDir()); len(outs) != 0 {
		t.Errorf("the victim received %+v", outs)
	}
}

// A name as long as a sender may make it (255 bytes) saves at the
// recipient: the temporary file does not make it too long.
func TestAttackLongestNameSaves(t *testing.T) {
	a := newArena(t)
	name := strings.Repeat("ệ", 82) + "abcde.pdf"
	if len(name) != envelope.MaxName {
		t.Fatalf("name of %d bytes", len(name))
	}
	content := "%PDF-1.7 giả"
	res, err := a.client(victimSender).Send(ctxT(t), envelope.New(victimSender, []string{victimRecipient}, "Tên dài"),
		broker.File{Name: name, Reader: strings.NewReader(content), Size: int64(len(content))})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	outs, handed := a.envelopeReceive(dir)
	if len(handed) != 1 || handed[0] != res.ID {
		t.Fatalf("outcomes %+v", outs)
	}
	got, err := os.ReadFile(filepath.Join(dir, res.ID, name))
	if err != nil || string(got) != content {
		t.Fatalf("saved: %q, %v", got, err)
	}
	if files := envelopeFiles(t, dir); len(files) != 1 {
		t.Errorf("files %q, want the attachment alone", files)
	}
}

// newEnvelopeBomb is prefix, then n bytes of fill, then suffix, made up as
// it is read: a request body far larger than anything the test holds.
func newEnvelopeBomb(prefix string, fill byte, n int64, suffix string) io.Reader {
	return io.MultiReader(strings.NewReader(prefix), io.LimitReader(envelopeFill(fill), n), strings.NewReader(suffix))
}

type envelopeFill byte

func (f envelopeFill) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(f)
	}
	return len(p), nil
}

// edXML built to exhaust memory (a subject, an attribute, a comment or a
// signature of 64 MB) is refused over HTTP as too large, and nothing is
// sent. The parser's memory is measured in envelope/edxml (TestMemoryBombs).
func TestAttackEdXMLBombs(t *testing.T) {
	a := newArena(t)
	header := "<edXMLEnvelope><edXMLHeader><MessageHeader><From><OrganId>" + attacker + "</OrganId></From><To><OrganId>" + victimRecipient + "</OrganId></To>"
	const n = 64 << 20
	for _, tc := range []struct {
		name, prefix, suffix string
		fill                 byte
	}{
		{"subject", header + "<Subject>", "</Subject></MessageHeader></edXMLHeader></edXMLEnvelope>", 'a'},
		{"attribute", `<edXMLEnvelope x="`, `"/>`, 'a'},
		{"comment", header + "<!--", "--></MessageHeader></edXMLHeader></edXMLEnvelope>", '-' + 1},
		{"signature", header + "</MessageHeader><Signature>", "</Signature></edXMLHeader></edXMLEnvelope>", 'A'},
	} {
		resp, b := a.do(attacker, "POST", "/v1/edxml", newEnvelopeBomb(tc.prefix, tc.fill, n, tc.suffix), "Content-Type", "application/xml")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "too large") {
			t.Errorf("%s bomb: %d %s", tc.name, resp.StatusCode, b)
		}
	}
	if outs, _ := a.envelopeReceive(t.TempDir()); len(outs) != 0 {
		t.Errorf("the victim received %+v", outs)
	}
}

// An edXML file's attachment names come from a foreign system: names a
// recipient could not save as shown are cleaned (not refused), and the
// recipient saves every one inside its folder, under a name that shows
// what it is.
func TestAttackEdXMLAttachmentNames(t *testing.T) {
	a := newArena(t)
	names := []string{"hoá đơn\u202Efdp.exe", "CON", "../../../../tmp/docaxis-edxml-escaped", `..\..\boot.ini`, "a.pdf.", "x:y.pdf", "NUL.txt"}
	var doc strings.Builder
	doc.WriteString("<edXMLEnvelope><edXMLHeader><MessageHeader><From><OrganId>" + attacker + "</OrganId></From><To><OrganId>" + victimRecipient +
		"</OrganId></To><Subject>Tên tệp lạ</Subject></MessageHeader></edXMLHeader><AttachmentEncoded>")
	for i, name := range names {
		fmt.Fprintf(&doc, "<Attachment><ContentId>c%d</ContentId><AttachmentName>%s</AttachmentName><ContentTransferEncoded>TmfDoHkgbeG7m2k=</ContentTransferEncoded></Attachment>", i, name)
	}
	doc.WriteString("</AttachmentEncoded></edXMLEnvelope>")
	resp, b := a.do(attacker, "POST", "/v1/edxml", strings.NewReader(doc.String()), "Content-Type", "application/xml")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/edxml: %d %s", resp.StatusCode, b)
	}
	var sent broker.EdXMLResult
	if err := json.Unmarshal(b, &sent); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	save := filepath.Join(root, "save")
	outs, handed := a.envelopeReceive(save)
	if len(handed) != 1 || handed[0] != sent.ID {
		t.Fatalf("outcomes %+v", outs)
	}
	files := envelopeFiles(t, root)
	original := filepath.Join(save, sent.ID, edxml.OriginalName) // the file as received travels too
	if len(files) != len(names)+1 || !strings.Contains(strings.Join(files, "\n"), original) {
		t.Errorf("files %q", files)
	}
	for _, f := range files {
		rel, err := filepath.Rel(filepath.Join(save, sent.ID), f)
		if err != nil || strings.Contains(rel, string(filepath.Separator)) {
			t.Errorf("%s is not directly in the envelope's folder", f)
		}
		if err := envelope.CheckAttachmentName(filepath.Base(f)); err != nil {
			t.Errorf("saved as %q: %v", filepath.Base(f), err)
		}
		if strings.ContainsRune(f, '\u202E') || strings.HasSuffix(f, "exe") && strings.Contains(f, "fdp") && !strings.HasSuffix(f, "fdp.exe") {
			t.Errorf("saved under a disguised name: %q", f)
		}
	}
	if _, err := os.Stat("/tmp/docaxis-edxml-escaped"); err == nil {
		t.Error("a file was written outside the save folder")
	}
}
