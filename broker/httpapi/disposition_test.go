package httpapi_test

import (
	"bytes"
	"mime"
	"net/http"
	"testing"
)

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
