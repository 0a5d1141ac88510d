package httpapi_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"testing"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
)

// listing returns a signed envelope from `from` to `to` whose manifest
// lists data, as knowing its hash allows.
func listing(t *testing.T, e *env, from, to string, data []byte) (*envelope.Envelope, []byte) {
	t.Helper()
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	ev := envelope.New(from, []string{to}, "Xin tệp của người khác")
	ev.Attachments = []envelope.Attachment{{Name: "x.txt", MediaType: "text/plain", Size: int64(len(data)), SHA256: hexSum, Key: storage.Key(hexSum)}}
	raw, err := e.bus.Identity(from).Seal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return ev, raw
}

// A signed envelope may list only attachments its sender holds: one it
// uploaded, sent or received. Knowing another agency's file hash is not
// enough to send it; forwarding a file received is.
func TestSendSignedOnlyAttachmentsTheSenderHolds(t *testing.T) {
	e := newEnv(t)
	secret := []byte("MẬT: nội dung chỉ Nghệ An được đọc")
	e.sendDoc(govOffice, "Văn bản mật", []string{ngheAn}, file("mat.txt", secret))

	_, raw := listing(t, e, sonLa, ngheAn, secret)
	if r := e.post(sonLa, part{name: "signed", contentType: "application/jose", data: raw}); r.StatusCode != http.StatusUnprocessableEntity || r.errCode(t) != "invalid_envelope" {
		t.Fatalf("listing bytes never held: %d %s", r.StatusCode, r.body)
	}
	// Nghệ An received them: it may forward them without posting them again.
	_, raw = listing(t, e, ngheAn, sonLa, secret)
	if r := e.post(ngheAn, part{name: "signed", contentType: "application/jose", data: raw}); r.StatusCode != http.StatusCreated {
		t.Fatalf("forwarding a file received: %d %s", r.StatusCode, r.body)
	}
}

// An envelope that lists another agency's file hash, published past the
// HTTP API (straight on the bus, as an agency's own credentials allow), gives its sender none of those
// bytes: not as an attachment, not in its edXML export.
func TestEdXMLExportOnlyAttachmentsTheAgencyMayRead(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	secret := []byte("MẬT: nội dung chỉ Nghệ An được đọc")
	e.sendDoc(govOffice, "Văn bản mật", []string{ngheAn}, file("mat.txt", secret))

	ev, raw := listing(t, e, sonLa, ngheAn, secret)
	if _, err := e.client.JetStream().Publish(ctx, record.DocSubject(ngheAn, sonLa), raw); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the envelope tracked", func() bool {
		_, err := e.client.Tracking(ctx, ev.ID, ngheAn)
		return err == nil
	})
	if r := e.do("GET", "/v1/envelopes/"+ev.ID+"/attachments/x.txt", sonLa, nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("attachment: %d %s", r.StatusCode, r.body)
	}
	x := e.do("GET", "/v1/envelopes/"+ev.ID+"/edxml", sonLa, nil)
	if bytes.Contains(x.body, []byte(base64.StdEncoding.EncodeToString(secret))) || bytes.Contains(x.body, secret) {
		t.Fatalf("edXML export (%d) carries bytes %s never held", x.StatusCode, sonLa)
	}
	if x.StatusCode != http.StatusForbidden || x.errCode(t) != "forbidden" || !bytes.Contains(x.body, []byte(`x.txt`)) {
		t.Fatalf("edXML export: %d %s", x.StatusCode, x.body)
	}
	// The envelope itself stays readable.
	if r := e.do("GET", "/v1/envelopes/"+ev.ID, sonLa, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("envelope: %d %s", r.StatusCode, r.body)
	}
}
