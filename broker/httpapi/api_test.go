package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
)

type envelopeJSON struct {
	ID                string   `json:"id"`
	From              string   `json:"from"`
	To                []string `json:"to"`
	Subject           string   `json:"subject"`
	Verified          bool     `json:"verified"`
	VerificationError string   `json:"verification_error"`
	Role              string   `json:"role"`
	Document          *envelope.Document
	Attachments       []struct {
		Name, URL, SHA256 string
		Size              int64
	}
}

type statusJSON struct {
	ID         string
	Sender     string
	Recipients []broker.Tracking
}

func (s statusJSON) state(agency string) envelope.State {
	for _, r := range s.Recipients {
		if r.Recipient == agency {
			return r.State
		}
	}
	return ""
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	e := newEnv(t)
	res := e.do("GET", "/v1/openapi.json", "", nil)
	if res.StatusCode != http.StatusOK || !bytes.Equal(res.body, e.spec.raw) {
		t.Fatalf("GET /v1/openapi.json = %d, %d bytes; want the file in the repository", res.StatusCode, len(res.body))
	}
	// Every operation the server routes is documented, and the reverse.
	for path, item := range e.spec.doc.Paths.Map() {
		for method := range item.Operations() {
			if path == "/v1/events" {
				continue // a stream: TestEvents
			}
			p := strings.NewReplacer("{id}", envelope.NewID(), "{name}", "x").Replace(path)
			r := e.do(method, p, govOffice, nil)
			if r.StatusCode == http.StatusMethodNotAllowed || (r.StatusCode == http.StatusNotFound && strings.Contains(string(r.body), "no such endpoint")) {
				t.Errorf("%s %s is documented but not served: %d %s", method, path, r.StatusCode, r.body)
			}
		}
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	revoked, _, err := e.tokens.Create(ctx, ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.tokens.Revoke(ctx, ngheAn, revoked); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"basic scheme", "Basic " + e.tok[govOffice], http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"unknown token", "Bearer dxt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", http.StatusUnauthorized},
		{"not a docaxis token", "Bearer hunter2", http.StatusUnauthorized},
		{"revoked token", "Bearer " + revoked, http.StatusUnauthorized},
		{"valid token", "Bearer " + e.tok[govOffice], http.StatusOK},
		{"scheme is case-insensitive", "bearer " + e.tok[govOffice], http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/v1/me", "/v1/inbox", "/v1/events", "/v1/envelopes/" + envelope.NewID()} {
				if tc.want == http.StatusOK && path != "/v1/me" {
					continue
				}
				res := e.do("GET", path, "", nil, "Authorization", tc.header)
				if res.StatusCode != tc.want {
					t.Fatalf("GET %s = %d %s, want %d", path, res.StatusCode, res.body, tc.want)
				}
				if tc.want == http.StatusUnauthorized {
					if code := res.errCode(t); code != "unauthorized" || res.Header.Get("WWW-Authenticate") == "" {
						t.Fatalf("GET %s: code %q, WWW-Authenticate %q", path, code, res.Header.Get("WWW-Authenticate"))
					}
				}
			}
		})
	}
	var me struct{ Code, Name string }
	e.do("GET", "/v1/me", govOffice, nil).json(t, &me)
	if me.Code != govOffice || me.Name != "Văn phòng Chính phủ" {
		t.Fatalf("me = %+v", me)
	}
}

// TestDocumentFlow walks one document through every endpoint, as the
// sender, the recipient, and an agency that has nothing to do with it.
func TestDocumentFlow(t *testing.T) {
	e := newEnv(t)
	content := []byte("Nội dung công văn số 123\n")
	m := `{"to":["000.00.00.H41"],"subject":"Về việc thử nghiệm trục liên thông","body":"Kính gửi UBND tỉnh Nghệ An",
		"document":{"code_number":"123","code_notation":"VPCP-TTĐT","due_date":"2099-01-01"}}`
	res := e.post(govOffice, meta(m), file("Công văn 123.txt", content))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("send = %d %s", res.StatusCode, res.body)
	}
	var sent struct {
		ID         string
		Recipients []string
	}
	res.json(t, &sent)
	if res.Header.Get("Location") != "/v1/envelopes/"+sent.ID || len(sent.Recipients) != 1 {
		t.Fatalf("send answer %+v, Location %q", sent, res.Header.Get("Location"))
	}
	id := sent.ID

	// The recipient's inbox lists it, verified, with a download URL.
	var inbox struct {
		Envelopes []envelopeJSON
		More      bool
	}
	e.do("GET", "/v1/inbox", ngheAn, nil).json(t, &inbox)
	if len(inbox.Envelopes) != 1 || inbox.Envelopes[0].ID != id || !inbox.Envelopes[0].Verified || inbox.Envelopes[0].From != govOffice {
		t.Fatalf("inbox = %+v", inbox)
	}
	att := inbox.Envelopes[0].Attachments
	sum := sha256.Sum256(content)
	if len(att) != 1 || att[0].Name != "Công văn 123.txt" || att[0].Size != int64(len(content)) || att[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("inbox attachments = %+v", att)
	}
	for _, who := range []string{govOffice, sonLa} {
		var other struct{ Envelopes []envelopeJSON }
		e.do("GET", "/v1/inbox", who, nil).json(t, &other)
		if len(other.Envelopes) != 0 {
			t.Fatalf("inbox of %s = %+v", who, other)
		}
	}

	// Download, as recipient and sender; a stranger gets 404.
	for _, who := range []string{ngheAn, govOffice} {
		dl := e.do("GET", att[0].URL, who, nil)
		if dl.StatusCode != http.StatusOK || !bytes.Equal(dl.body, content) {
			t.Fatalf("download as %s = %d %q", who, dl.StatusCode, dl.body)
		}
		if cd := dl.Header.Get("Content-Disposition"); !strings.Contains(cd, "filename*=UTF-8''"+url.PathEscape("Công văn 123.txt")) {
			t.Fatalf("Content-Disposition = %q", cd)
		}
		if dl.Header.Get("ETag") != `"`+att[0].SHA256+`"` || !strings.HasPrefix(dl.Header.Get("Repr-Digest"), "sha-256=:") {
			t.Fatalf("digest headers = %v", dl.Header)
		}
	}

	// The envelope itself, per role; the signed bytes on request.
	var env envelopeJSON
	e.do("GET", "/v1/envelopes/"+id, ngheAn, nil).json(t, &env)
	if !env.Verified || env.Role != "recipient" || env.Document == nil || env.Document.CodeNotation != "VPCP-TTĐT" {
		t.Fatalf("envelope as recipient = %+v", env)
	}
	e.do("GET", "/v1/envelopes/"+id, govOffice, nil).json(t, &env)
	if env.Role != "sender" {
		t.Fatalf("envelope as sender = %+v", env)
	}
	jose := e.do("GET", "/v1/envelopes/"+id, ngheAn, nil, "Accept", "application/jose")
	if s, err := envelope.Open(jose.body); err != nil || s.Envelope.ID != id || jose.Header.Get("Content-Type") != "application/jose" {
		t.Fatalf("signed bytes: %v (%s)", err, jose.Header.Get("Content-Type"))
	}

	status := func(who string) statusJSON {
		t.Helper()
		var st statusJSON
		r := e.do("GET", "/v1/envelopes/"+id+"/status", who, nil)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("status as %s = %d %s", who, r.StatusCode, r.body)
		}
		r.json(t, &st)
		return st
	}
	if st := status(govOffice); st.state(ngheAn) != envelope.StateSent {
		t.Fatalf("status before ack = %+v", st)
	}

	// A business status before the receipt is refused with a hint.
	early := e.do("POST", "/v1/envelopes/"+id+"/status", ngheAn, strings.NewReader(`{"state":"accepted"}`), "Content-Type", "application/json")
	if early.StatusCode != http.StatusConflict || early.errCode(t) != "conflict" || !strings.Contains(string(early.body), "/ack") {
		t.Fatalf("accepted before ack = %d %s", early.StatusCode, early.body)
	}

	// Ack: delivered at once, gone from the inbox, idempotent.
	var ack struct {
		ID, State, Digest string
		Duplicate         bool
	}
	r := e.do("POST", "/v1/inbox/"+id+"/ack", ngheAn, nil)
	r.json(t, &ack)
	if r.StatusCode != http.StatusOK || ack.State != "delivered" || ack.Duplicate || ack.Digest == "" {
		t.Fatalf("ack = %d %+v", r.StatusCode, ack)
	}
	if st := status(govOffice); st.state(ngheAn) != envelope.StateDelivered {
		t.Fatalf("status after ack = %+v", st)
	}
	e.do("GET", "/v1/inbox", ngheAn, nil).json(t, &inbox)
	if len(inbox.Envelopes) != 0 {
		t.Fatalf("inbox after ack = %+v", inbox)
	}
	e.do("POST", "/v1/inbox/"+id+"/ack", ngheAn, nil).json(t, &ack)
	if !ack.Duplicate {
		t.Fatalf("second ack = %+v", ack)
	}

	// Business statuses by name and by edXML code; the sender sees them.
	for _, tc := range []struct {
		body string
		want envelope.State
	}{
		{`{"state":"accepted","note":"Đã tiếp nhận, chuyển phòng Tổng hợp"}`, envelope.StateAccepted},
		{`{"state":"05","staff":{"name":"Nguyễn Văn A","department":"Phòng Tổng hợp"}}`, envelope.StateProcessing},
	} {
		r := e.do("POST", "/v1/envelopes/"+id+"/status", ngheAn, strings.NewReader(tc.body), "Content-Type", "application/json")
		var out struct{ ID, Of, State, Code string }
		r.json(t, &out)
		if r.StatusCode != http.StatusAccepted || out.Of != id || out.State != string(tc.want) || out.Code != tc.want.Code() {
			t.Fatalf("POST status %s = %d %s", tc.body, r.StatusCode, r.body)
		}
		if st := status(govOffice); st.state(ngheAn) != tc.want {
			t.Fatalf("sender sees %s, want %s", st.state(ngheAn), tc.want)
		}
	}
	st := status(ngheAn)
	if len(st.Recipients) != 1 || len(st.Recipients[0].History) != 4 || st.Recipients[0].History[2].Note == "" {
		t.Fatalf("recipient's status = %+v", st)
	}

	// Who may do what.
	tests := []struct {
		name, method, path, agency, body string
		want                             int
		code                             string
	}{
		{"stranger reads envelope", "GET", "/v1/envelopes/" + id, sonLa, "", 404, "not_found"},
		{"stranger reads status", "GET", "/v1/envelopes/" + id + "/status", sonLa, "", 404, "not_found"},
		{"stranger downloads", "GET", att[0].URL, sonLa, "", 404, "not_found"},
		{"stranger acks", "POST", "/v1/inbox/" + id + "/ack", sonLa, "", 404, "not_found"},
		{"stranger sets status", "POST", "/v1/envelopes/" + id + "/status", sonLa, `{"state":"done"}`, 404, "not_found"},
		{"sender acks", "POST", "/v1/inbox/" + id + "/ack", govOffice, "", 404, "not_found"},
		{"sender sets status", "POST", "/v1/envelopes/" + id + "/status", govOffice, `{"state":"done"}`, 403, "forbidden"},
		{"state change not allowed", "POST", "/v1/envelopes/" + id + "/status", ngheAn, `{"state":"accepted"}`, 409, "conflict"},
		{"bus state by a clerk", "POST", "/v1/envelopes/" + id + "/status", ngheAn, `{"state":"delivered"}`, 400, "bad_request"},
		{"unknown state", "POST", "/v1/envelopes/" + id + "/status", ngheAn, `{"state":"finished"}`, 400, "bad_request"},
		{"missing state", "POST", "/v1/envelopes/" + id + "/status", ngheAn, `{"note":"x"}`, 400, "bad_request"},
		{"bad JSON", "POST", "/v1/envelopes/" + id + "/status", ngheAn, `{"state":`, 400, "bad_request"},
		{"unknown field", "POST", "/v1/envelopes/" + id + "/status", ngheAn, `{"state":"done","colour":"red"}`, 400, "bad_request"},
		{"trailing data", "POST", "/v1/envelopes/" + id + "/status", ngheAn, `{"state":"done"} {}`, 400, "bad_request"},
		{"key twice", "POST", "/v1/envelopes/" + id + "/status", ngheAn, `{"state":"accepted","state":"done"}`, 400, "bad_request"},
		{"keys differing in case", "POST", "/v1/envelopes/" + id + "/status", ngheAn, `{"state":"done","State":"done"}`, 400, "bad_request"},
		{"empty body", "POST", "/v1/envelopes/" + id + "/status", ngheAn, ``, 400, "bad_request"},
		{"not an id", "GET", "/v1/envelopes/not-a-uuid", govOffice, "", 400, "bad_request"},
		{"unknown id", "GET", "/v1/envelopes/" + envelope.NewID() + "/status", govOffice, "", 404, "not_found"},
		{"unknown attachment", "GET", "/v1/envelopes/" + id + "/attachments/nope.pdf", ngheAn, "", 404, "not_found"},
		{"ack unknown id", "POST", "/v1/inbox/" + envelope.NewID() + "/ack", ngheAn, "", 404, "not_found"},
		{"ack not an id", "POST", "/v1/inbox/x/ack", ngheAn, "", 400, "bad_request"},
		{"bad inbox limit", "GET", "/v1/inbox?limit=0", ngheAn, "", 400, "bad_request"},
		{"bad inbox cursor", "GET", "/v1/inbox?after=x", ngheAn, "", 400, "bad_request"},
		{"bad list box", "GET", "/v1/envelopes?box=trash", ngheAn, "", 400, "bad_request"},
		{"bad list date", "GET", "/v1/envelopes?from=01/02/2025", ngheAn, "", 400, "bad_request"},
		{"no such endpoint", "GET", "/v1/nothing", ngheAn, "", 404, "not_found"},
		{"method not allowed", "DELETE", "/v1/inbox", ngheAn, "", 405, "method_not_allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			var hdr []string
			if tc.body != "" || tc.method == "POST" {
				body = strings.NewReader(tc.body)
				hdr = []string{"Content-Type", "application/json"}
			}
			r := e.do(tc.method, tc.path, tc.agency, body, hdr...)
			if r.StatusCode != tc.want || r.errCode(t) != tc.code {
				t.Fatalf("%s %s = %d %s, want %d %s", tc.method, tc.path, r.StatusCode, r.body, tc.want, tc.code)
			}
		})
	}
	wrongType := e.do("POST", "/v1/envelopes/"+id+"/status", ngheAn, strings.NewReader("state=done"), "Content-Type", "application/x-www-form-urlencoded")
	if wrongType.StatusCode != http.StatusUnsupportedMediaType || wrongType.errCode(t) != "unsupported_media_type" {
		t.Fatalf("form body = %d %s", wrongType.StatusCode, wrongType.body)
	}

	// The clerks' lists and search.
	list := func(who, query string) []map[string]any {
		t.Helper()
		var out struct {
			Documents []map[string]any
			Total     int
		}
		e.do("GET", "/v1/envelopes?"+query, who, nil).json(t, &out)
		return out.Documents
	}
	for _, tc := range []struct {
		who, query string
		want       int
	}{
		{govOffice, "box=sent", 1},
		{govOffice, "box=received", 0},
		{ngheAn, "box=received", 1},
		{ngheAn, "box=sent", 0},
		{sonLa, "", 0},
		{govOffice, "box=sent&q=" + url.QueryEscape("thu nghiem"), 1},    // without diacritics
		{govOffice, "box=sent&q=" + url.QueryEscape("123/VPCP-TTĐT"), 1}, // number/notation
		{govOffice, "box=sent&q=" + url.QueryEscape("nghệ an"), 1},       // recipient's name
		{govOffice, "box=sent&q=" + url.QueryEscape("Sơn La"), 0},
		{govOffice, "box=sent&from=2000-01-01&to=2999-12-31", 1},
		{govOffice, "box=sent&to=2000-01-01", 0},
		{govOffice, "box=sent&overdue=true", 0},
	} {
		if got := list(tc.who, tc.query); len(got) != tc.want {
			t.Errorf("list as %s ?%s = %d documents, want %d", tc.who, tc.query, len(got), tc.want)
		}
	}
	var agencies struct{ Agencies []struct{ Code, Name string } }
	e.do("GET", "/v1/agencies", sonLa, nil).json(t, &agencies)
	if len(agencies.Agencies) != 3 || agencies.Agencies[2].Name != "UBND tỉnh Nghệ An" {
		t.Fatalf("agencies = %+v", agencies)
	}
}

func TestSendErrors(t *testing.T) {
	e := newEnv(t, withLimits(httpapi.Limits{Rate: -1, MaxAttachmentBytes: 1 << 10, MaxAttachments: 2, MaxRequestBytes: 64 << 10, MaxJSONBytes: 4 << 10}))
	okMeta := meta(`{"to":["000.00.00.H41"],"subject":"Thử lỗi"}`)
	tests := []struct {
		name  string
		parts []part
		want  int
		code  string
	}{
		{"missing parts", nil, 400, "bad_request"},
		{"only a file", []part{file("a.txt", []byte("x"))}, 400, "bad_request"},
		{"bad JSON", []part{meta(`{"to":`)}, 400, "bad_request"},
		{"to is not a list", []part{meta(`{"to":"000.00.00.H41","subject":"x"}`)}, 400, "bad_request"},
		{"unknown field", []part{meta(`{"to":["000.00.00.H41"],"subject":"x","priority":1}`)}, 400, "bad_request"},
		{"no recipients", []part{meta(`{"to":[],"subject":"x"}`)}, 400, "bad_request"},
		{"no subject", []part{meta(`{"to":["000.00.00.H41"]}`)}, 400, "bad_request"},
		{"bad code", []part{meta(`{"to":["H41"],"subject":"x"}`)}, 422, "invalid_envelope"},
		{"unknown recipient", []part{meta(`{"to":["000.00.00.H99"],"subject":"x"}`)}, 422, "unknown_agency"},
		{"to itself", []part{meta(`{"to":["000.00.00.G22"],"subject":"x"}`)}, 422, "invalid_envelope"},
		{"as another agency", []part{meta(`{"from":"000.00.00.H14","to":["000.00.00.H41"],"subject":"x"}`)}, 403, "forbidden"},
		{"manifest in meta", []part{meta(`{"to":["000.00.00.H41"],"subject":"x","attachments":[{"name":"a"}]}`)}, 400, "bad_request"},
		{"status in meta", []part{meta(`{"to":["000.00.00.H41"],"subject":"x","kind":"status"}`)}, 400, "bad_request"},
		{"two metas", []part{okMeta, okMeta}, 400, "bad_request"},
		{"unexpected part", []part{okMeta, {name: "attachment", filename: "a.txt", data: []byte("x")}}, 400, "bad_request"},
		{"file without a name", []part{okMeta, {name: "file", data: []byte("x")}}, 400, "bad_request"},
		{"file name with a slash", []part{okMeta, file(`a\b.txt`, []byte("x"))}, 400, "bad_request"},
		{"two files with one name", []part{okMeta, file("a.txt", []byte("x")), file("a.txt", []byte("y"))}, 400, "bad_request"},
		{"oversize attachment", []part{okMeta, file("big.bin", bytes.Repeat([]byte("x"), 2<<10))}, 413, "too_large"},
		{"too many attachments", []part{okMeta, file("1.txt", []byte("1")), file("2.txt", []byte("2")), file("3.txt", []byte("3"))}, 413, "too_large"},
		{"oversize meta", []part{meta(`{"to":["000.00.00.H41"],"subject":"` + strings.Repeat("x", 5<<10) + `"}`)}, 413, "too_large"},
		{"garbage signed", []part{{name: "signed", data: []byte("not.a.jws")}}, 422, "invalid_envelope"},
		{"meta and signed", []part{okMeta, {name: "signed", data: []byte("a.b.c")}}, 400, "bad_request"},
		{"file before meta", []part{file("a.txt", []byte("x")), okMeta}, 400, "bad_request"},
		{"key twice", []part{meta(`{"to":["000.00.00.H41"],"subject":"x","subject":"y"}`)}, 400, "bad_request"},
		{"keys differing in case", []part{meta(`{"to":["000.00.00.H41"],"subject":"x","Subject":"y"}`)}, 400, "bad_request"},
		{"nested keys differing in case", []part{meta(`{"to":["000.00.00.H41"],"subject":"x","document":{"signer":"a","SIGNER":"b"}}`)}, 400, "bad_request"},
		{"id not a UUID", []part{meta(`{"id":"123","to":["000.00.00.H41"],"subject":"x"}`)}, 422, "invalid_envelope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(govOffice, tc.parts...)
			if r.StatusCode != tc.want || r.errCode(t) != tc.code {
				t.Fatalf("= %d %s, want %d %s", r.StatusCode, r.body, tc.want, tc.code)
			}
		})
	}

	t.Run("not multipart", func(t *testing.T) {
		r := e.do("POST", "/v1/envelopes", govOffice, strings.NewReader(`{"to":["000.00.00.H41"],"subject":"x"}`), "Content-Type", "application/json")
		if r.StatusCode != http.StatusUnsupportedMediaType || r.errCode(t) != "unsupported_media_type" {
			t.Fatalf("= %d %s", r.StatusCode, r.body)
		}
	})
	t.Run("broken multipart", func(t *testing.T) {
		r := e.do("POST", "/v1/envelopes", govOffice, strings.NewReader("--xyz\r\nContent-Disposition: form-data; name=\"meta\"\r\n\r\n{\"to\""), "Content-Type", "multipart/form-data; boundary=xyz")
		if r.StatusCode != http.StatusBadRequest || r.errCode(t) != "bad_request" {
			t.Fatalf("= %d %s", r.StatusCode, r.body)
		}
	})
	t.Run("request over the size limit", func(t *testing.T) {
		// Both ways: a declared length over the limit is refused before
		// reading, a chunked body when it crosses the limit.
		for _, chunked := range []bool{false, true} {
			body, ct := multipartBody(t, okMeta, file("a.txt", bytes.Repeat([]byte("x"), 900)), file("b.txt", bytes.Repeat([]byte("y"), 100<<10)))
			var rd io.Reader = body
			if chunked {
				rd = io.MultiReader(body) // hides the length: sent chunked
			}
			r := e.do("POST", "/v1/envelopes", govOffice, rd, "Content-Type", ct)
			if r.StatusCode != http.StatusRequestEntityTooLarge || r.errCode(t) != "too_large" {
				t.Fatalf("chunked=%v: = %d %s", chunked, r.StatusCode, r.body)
			}
		}
	})
	t.Run("no token", func(t *testing.T) {
		body, ct := multipartBody(t, okMeta)
		r := e.do("POST", "/v1/envelopes", "", body, "Content-Type", ct)
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("= %d %s", r.StatusCode, r.body)
		}
	})
	// Nothing above reached a mailbox.
	var inbox struct{ Envelopes []envelopeJSON }
	e.do("GET", "/v1/inbox", ngheAn, nil).json(t, &inbox)
	if len(inbox.Envelopes) != 0 {
		t.Fatalf("refused sends reached the inbox: %+v", inbox.Envelopes)
	}
}

// TestSendSigned posts envelopes a DMS signed itself.
func TestSendSigned(t *testing.T) {
	e := newEnv(t)
	gov := e.bus.Identity(govOffice)
	content := []byte("tệp do DMS tự ký")
	sum := sha256.Sum256(content)
	hexSum := hex.EncodeToString(sum[:])

	seal := func(id interface {
		Seal(*envelope.Envelope, ...envelope.ValidateOption) ([]byte, error)
	}, from string, atts ...envelope.Attachment) (*envelope.Envelope, []byte) {
		env := envelope.New(from, []string{ngheAn}, "Văn bản tự ký")
		env.Attachments = atts
		raw, err := id.Seal(env)
		if err != nil {
			t.Fatal(err)
		}
		return env, raw
	}
	att := envelope.Attachment{Name: "tệp.txt", MediaType: "text/plain", Size: int64(len(content)), SHA256: hexSum, Key: storage.Key(hexSum)}

	// The manifest is signed; the file comes alongside.
	env, raw := seal(gov, govOffice, att)
	r := e.post(govOffice, part{name: "signed", contentType: "application/jose", data: raw}, file("tệp.txt", content))
	var out struct {
		ID        string
		Digest    string
		Duplicate bool
	}
	r.json(t, &out)
	if r.StatusCode != http.StatusCreated || out.ID != env.ID || out.Digest != envelope.Digest(raw) {
		t.Fatalf("send signed = %d %s", r.StatusCode, r.body)
	}
	// Sent again: a duplicate, answered as success.
	r = e.post(govOffice, part{name: "signed", data: raw})
	r.json(t, &out)
	if r.StatusCode != http.StatusOK || !out.Duplicate {
		t.Fatalf("send signed again = %d %s", r.StatusCode, r.body)
	}
	// Forwarded unchanged: the recipient gets the exact bytes.
	jose := e.do("GET", "/v1/envelopes/"+env.ID, ngheAn, nil, "Accept", "application/jose")
	if !bytes.Equal(jose.body, raw) {
		t.Fatal("signed envelope was not forwarded unchanged")
	}

	missing := envelope.Attachment{Name: "thiếu.txt", MediaType: "text/plain", Size: 3, SHA256: strings.Repeat("ab", 32), Key: storage.Key(strings.Repeat("ab", 32))}
	_, noFile := seal(gov, govOffice, missing)
	_, byOther := seal(e.bus.Identity(sonLa), sonLa)
	_, good := seal(gov, govOffice)
	tampered := bytes.Replace(good, []byte("."), []byte(".e"), 1)
	tests := []struct {
		name string
		raw  []byte
		want int
		code string
	}{
		{"signed by another agency", byOther, 403, "forbidden"},
		{"tampered", tampered, 422, "invalid_envelope"},
		{"attachment not in the store", noFile, 422, "invalid_envelope"},
		{"bare JSON", []byte(`{"id":"x"}`), 422, "invalid_envelope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(govOffice, part{name: "signed", data: tc.raw})
			if r.StatusCode != tc.want || r.errCode(t) != tc.code {
				t.Fatalf("= %d %s, want %d %s", r.StatusCode, r.body, tc.want, tc.code)
			}
		})
	}
}

func TestInboxPaging(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 3 {
		ids = append(ids, e.sendDoc(govOffice, fmt.Sprintf("Công văn %d", i), []string{ngheAn, sonLa}))
	}
	var page struct {
		Envelopes []envelopeJSON
		More      bool
		Next      string
	}
	e.do("GET", "/v1/inbox?limit=2", ngheAn, nil).json(t, &page)
	if len(page.Envelopes) != 2 || !page.More || page.Next == "" || page.Envelopes[0].ID != ids[0] {
		t.Fatalf("first page = %+v", page)
	}
	e.do("GET", "/v1/inbox?limit=2&after="+page.Next, ngheAn, nil).json(t, &page)
	if len(page.Envelopes) != 1 || page.More || page.Envelopes[0].ID != ids[2] {
		t.Fatalf("second page = %+v", page)
	}
	// Acknowledging the middle one leaves the others, in order.
	e.do("POST", "/v1/inbox/"+ids[1]+"/ack", ngheAn, nil)
	e.do("GET", "/v1/inbox", ngheAn, nil).json(t, &page)
	if len(page.Envelopes) != 2 || page.Envelopes[0].ID != ids[0] || page.Envelopes[1].ID != ids[2] {
		t.Fatalf("after ack = %+v", page)
	}
	// The Go mailbox of the same agency skips what HTTP acknowledged.
	rcpt := e.bus.Client(ngheAn)
	var outs []broker.Outcome
	mb, err := rcpt.Mailbox(ctxT(t), ngheAn, broker.OnOutcome(func(o broker.Outcome) { outs = append(outs, o) }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Fetch(ctxT(t), 0, 300*time.Millisecond, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if len(outs) != 3 || outs[0].Duplicate || !outs[1].Duplicate || outs[2].Duplicate {
		t.Fatalf("mailbox outcomes = %+v", outs)
	}
	e.do("GET", "/v1/inbox", ngheAn, nil).json(t, &page)
	if len(page.Envelopes) != 0 {
		t.Fatalf("inbox after the mailbox ran = %+v", page)
	}
	// Sơn La, which has not read anything, still has all three.
	e.do("GET", "/v1/inbox", sonLa, nil).json(t, &page)
	if len(page.Envelopes) != 3 {
		t.Fatalf("inbox of %s = %+v", sonLa, page)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, withLimits(httpapi.Limits{Rate: 0.5, Burst: 2}))
	for i := range 2 {
		if r := e.do("GET", "/v1/me", govOffice, nil); r.StatusCode != http.StatusOK {
			t.Fatalf("request %d = %d", i, r.StatusCode)
		}
	}
	r := e.do("GET", "/v1/me", govOffice, nil)
	if r.StatusCode != http.StatusTooManyRequests || r.errCode(t) != "rate_limited" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("third request = %d %s (Retry-After %q)", r.StatusCode, r.body, r.Header.Get("Retry-After"))
	}
	// Per agency: another agency is not held back.
	if r := e.do("GET", "/v1/me", ngheAn, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("other agency = %d", r.StatusCode)
	}
}

func TestEvents(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.tok[govOffice])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	e.spec.check(t, req, res, nil)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	states := make(chan broker.Tracking, 32)
	go func() {
		defer close(states)
		sc := newSSEReader(res.Body)
		for {
			ev, data, err := sc.next()
			if err != nil {
				return
			}
			if ev != "tracking" {
				continue
			}
			var tr broker.Tracking
			if json.Unmarshal([]byte(data), &tr) == nil {
				states <- tr
			}
		}
	}()
	id := e.sendDoc(govOffice, "Theo dõi trực tiếp", []string{ngheAn})
	e.do("POST", "/v1/inbox/"+id+"/ack", ngheAn, nil)
	e.do("POST", "/v1/envelopes/"+id+"/status", ngheAn, strings.NewReader(`{"state":"accepted"}`), "Content-Type", "application/json")
	var seen []envelope.State
	for tr := range states {
		if tr.Envelope != id {
			continue
		}
		if len(seen) == 0 || seen[len(seen)-1] != tr.State {
			seen = append(seen, tr.State)
		}
		if tr.State == envelope.StateAccepted {
			break
		}
	}
	// The stream carries each pair's latest state: one overwritten before
	// the watch read it (history 1, a busy machine) is passed over, but
	// the states come in order and end at the last.
	want := []envelope.State{envelope.StateSent, envelope.StateDelivered, envelope.StateAccepted}
	if len(seen) == 0 || !inOrder(seen, want) || seen[len(seen)-1] != envelope.StateAccepted {
		t.Fatalf("events = %v, want %v in order (a state overwritten meanwhile may be passed over), ending at %s", seen, want, envelope.StateAccepted)
	}

	// Another agency's stream does not carry this document.
	other, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/v1/events", nil)
	other.Header.Set("Authorization", "Bearer "+e.tok[sonLa])
	ores, err := http.DefaultClient.Do(other)
	if err != nil {
		t.Fatal(err)
	}
	defer ores.Body.Close()
	got := make(chan string, 1)
	go func() {
		ev, data, _ := newSSEReader(ores.Body).next()
		got <- ev + data
	}()
	select {
	case s := <-got:
		if strings.Contains(s, id) {
			t.Fatalf("%s saw an event of another agency's document: %s", sonLa, s)
		}
	case <-time.After(500 * time.Millisecond):
	}
}

func TestTokens(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	t1, info, err := e.tokens.Create(ctx, sonLa)
	if err != nil || !strings.HasPrefix(t1, "dxt_") || info.Hash != httpapi.HashToken(t1) {
		t.Fatalf("create = %q %+v %v", t1, info, err)
	}
	t2, _, _ := e.tokens.Create(ctx, sonLa)
	if got, err := e.tokens.Authenticate(ctx, t1); err != nil || got != sonLa {
		t.Fatalf("authenticate = %q %v", got, err)
	}
	if err := e.tokens.Revoke(ctx, govOffice, t1); err == nil {
		t.Fatal("an agency revoked another agency's token")
	}
	n, err := e.tokens.RevokeAll(ctx, sonLa)
	if err != nil || n != 3 { // the env's own token too
		t.Fatalf("revoke all = %d %v", n, err)
	}
	for _, tok := range []string{t1, t2, e.tok[sonLa]} {
		if _, err := e.tokens.Authenticate(ctx, tok); err == nil {
			t.Fatal("revoked token still authenticates")
		}
	}
	if r := e.do("GET", "/v1/me", sonLa, nil); r.StatusCode != http.StatusUnauthorized || !strings.Contains(string(r.body), "revoked") {
		t.Fatalf("revoked token over HTTP = %d %s", r.StatusCode, r.body)
	}
	if _, err := e.tokens.Authenticate(ctx, e.tok[govOffice]); err != nil {
		t.Fatalf("another agency's token was revoked: %v", err)
	}
	// Nothing in the bucket is a usable token.
	list, err := e.tokens.List(ctx, govOffice)
	if err != nil || len(list) != 1 {
		t.Fatalf("list = %+v %v", list, err)
	}
	if strings.Contains(list[0].Hash, strings.TrimPrefix(e.tok[govOffice], "dxt_")) {
		t.Fatal("token kept in clear")
	}
}

// TestServesPage checks the page shell and its assets.
func TestServesPage(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html", "Trục liên thông văn bản"},
		{"/static/app.js", "javascript", "/v1/events"},
		{"/static/app.css", "text/css", "max-width: 640px"},
	} {
		r := e.do("GET", tc.path, "", nil)
		if r.StatusCode != http.StatusOK || !strings.Contains(r.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(r.body), tc.contains) {
			t.Errorf("GET %s = %d %s", tc.path, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
	if r := e.do("GET", "/", "", nil); !strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Errorf("page without a content security policy")
	}
	if r := e.do("GET", "/static/nothing.js", "", nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("missing asset = %d", r.StatusCode)
	}
}

// sseReader splits a Server-Sent Events stream into events.
type sseReader struct {
	r   *bytes.Buffer
	src io.Reader
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{r: new(bytes.Buffer), src: r} }

func (s *sseReader) next() (event, data string, err error) {
	for {
		if i := bytes.Index(s.r.Bytes(), []byte("\n\n")); i >= 0 {
			block := string(s.r.Next(i + 2))
			for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
				switch {
				case strings.HasPrefix(line, "event: "):
					event = strings.TrimPrefix(line, "event: ")
				case strings.HasPrefix(line, "data: "):
					data += strings.TrimPrefix(line, "data: ")
				}
			}
			if event == "" && data == "" {
				continue // a comment or retry line
			}
			return event, data, nil
		}
		buf := make([]byte, 4096)
		n, err := s.src.Read(buf)
		s.r.Write(buf[:n])
		if err != nil {
			return "", "", err
		}
	}
}

// inOrder reports whether seen is a subsequence of want.
func inOrder[T comparable](seen, want []T) bool {
	i := 0
	for _, s := range seen {
		for i < len(want) && want[i] != s {
			i++
		}
		if i == len(want) {
			return false
		}
		i++
	}
	return true
}
