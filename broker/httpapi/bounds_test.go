package httpapi_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
)

type listJSON struct {
	Documents []struct{ ID, Subject, Role string }
	Total     int
	More      bool
	Next      string
}

// TestListPages walks a box page by page, with and without a filter.
func TestListPages(t *testing.T) {
	e := newEnv(t, withLimits(httpapi.Limits{Rate: -1, ListScan: 2}))
	var ids []string
	for i := range 5 {
		ids = append(ids, e.sendDoc(govOffice, fmt.Sprintf("Công văn %d", i), []string{ngheAn}))
	}
	list := func(who, query string) listJSON {
		t.Helper()
		var l listJSON
		r := e.do("GET", "/v1/envelopes?"+query, who, nil)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("list ?%s = %d %s", query, r.StatusCode, r.body)
		}
		r.json(t, &l)
		return l
	}
	for _, tc := range []struct{ who, box, role string }{{ngheAn, "received", "recipient"}, {govOffice, "sent", "sender"}, {ngheAn, "all", "recipient"}} {
		var got []string
		q := "box=" + tc.box + "&limit=2"
		for page := 0; ; page++ {
			l := list(tc.who, q)
			if l.Total != len(ids) {
				t.Fatalf("%s box=%s: total %d, want %d", tc.who, tc.box, l.Total, len(ids))
			}
			for _, d := range l.Documents {
				if d.Role != tc.role {
					t.Fatalf("%s box=%s: role %q", tc.who, tc.box, d.Role)
				}
				got = append(got, d.ID)
			}
			if !l.More {
				if l.Next != "" || len(l.Documents) != 1 {
					t.Fatalf("last page = %+v", l)
				}
				break
			}
			if len(l.Documents) != 2 || l.Next != l.Documents[1].ID || page > 3 {
				t.Fatalf("page %d = %+v", page, l)
			}
			q = "box=" + tc.box + "&limit=2&before=" + l.Next
		}
		for i, id := range got {
			if id != ids[len(ids)-1-i] {
				t.Fatalf("%s box=%s: pages give %v, want newest first of %v", tc.who, tc.box, got, ids)
			}
		}
	}

	// A filter examines at most ListScan documents (or a page, if more)
	// per call and says where to go on: the oldest document is found on
	// the third call.
	q := "box=received&limit=1&q=" + url.QueryEscape("cong van 0")
	var found []string
	for calls := 1; ; calls++ {
		l := list(ngheAn, q)
		for _, d := range l.Documents {
			found = append(found, d.ID)
		}
		if l.Total != len(l.Documents) {
			t.Fatalf("filtered total %d for %d documents", l.Total, len(l.Documents))
		}
		if !l.More {
			if calls != 3 {
				t.Fatalf("the filter took %d calls over 5 documents 2 at a time", calls)
			}
			break
		}
		q = "box=received&limit=1&q=" + url.QueryEscape("cong van 0") + "&before=" + l.Next
	}
	if len(found) != 1 || found[0] != ids[0] {
		t.Fatalf("found %v, want %s", found, ids[0])
	}
	if l := list(sonLa, "limit=2"); len(l.Documents) != 0 || l.More || l.Total != 0 {
		t.Fatalf("a stranger's list = %+v", l)
	}
	for _, bad := range []string{"before=x", "before=" + strings.ToUpper(ids[0]), "overdue=yes", "limit=1001"} {
		if r := e.do("GET", "/v1/envelopes?"+bad, ngheAn, nil); r.StatusCode != http.StatusBadRequest || r.errCode(t) != "bad_request" {
			t.Errorf("?%s = %d %s", bad, r.StatusCode, r.body)
		}
	}
}

// TestEnvelopeIDs: a DMS may choose the id; its retries are answered with
// the same envelope, and another agency cannot take the id.
func TestEnvelopeIDs(t *testing.T) {
	e := newEnv(t)
	id := envelope.NewID()
	m := meta(`{"id":"` + id + `","to":["` + ngheAn + `"],"subject":"Mã do DMS đặt"}`)
	content := []byte("tệp kèm")
	var first, again struct {
		ID, Digest string
		Recipients []string
		Duplicate  bool
	}
	r := e.post(govOffice, m, file("a.txt", content))
	r.json(t, &first)
	if r.StatusCode != http.StatusCreated || first.ID != id || first.Duplicate {
		t.Fatalf("send = %d %s", r.StatusCode, r.body)
	}
	r = e.post(govOffice, m, file("a.txt", content))
	r.json(t, &again)
	if r.StatusCode != http.StatusOK || !again.Duplicate || again.ID != id || again.Digest != first.Digest || len(again.Recipients) != 1 {
		t.Fatalf("retry = %d %s, want 200 duplicate with the first digest %s", r.StatusCode, r.body, first.Digest)
	}
	var inbox struct{ Envelopes []envelopeJSON }
	e.do("GET", "/v1/inbox", ngheAn, nil).json(t, &inbox)
	if len(inbox.Envelopes) != 1 || inbox.Envelopes[0].ID != id {
		t.Fatalf("inbox after a retry = %+v", inbox.Envelopes)
	}
	for _, tc := range []struct {
		name string
		m    part
	}{
		{"same id by another agency", meta(`{"id":"` + id + `","to":["` + ngheAn + `"],"subject":"Lấy mã"}`)},
		{"same id to another recipient", meta(`{"id":"` + id + `","to":["` + govOffice + `"],"subject":"Lấy mã"}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(sonLa, tc.m, file("b.txt", []byte("của Sơn La")))
			if r.StatusCode != http.StatusConflict || r.errCode(t) != "id_taken" {
				t.Fatalf("= %d %s, want 409 id_taken", r.StatusCode, r.body)
			}
		})
	}
	if _, err := e.client.Store().Stat(ctxT(t), storage.Key(sum([]byte("của Sơn La")))); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the refused request's file is stored: %v", err)
	}
	var env envelopeJSON
	e.do("GET", "/v1/envelopes/"+id, ngheAn, nil).json(t, &env)
	if env.From != govOffice || !env.Verified {
		t.Fatalf("envelope after the attempts = %+v", env)
	}
}

// TestSignedFiles: files posted with a signed envelope must be the ones
// its manifest lists; a wrong one is refused and not kept.
func TestSignedFiles(t *testing.T) {
	e := newEnv(t)
	content := []byte("tệp đã ký")
	att := envelope.Attachment{Name: "ky.txt", MediaType: "text/plain", Size: int64(len(content)), SHA256: sum(content), Key: storage.Key(sum(content))}
	env := envelope.New(govOffice, []string{ngheAn}, "Tự ký")
	env.Attachments = []envelope.Attachment{att}
	raw, err := e.bus.Identity(govOffice).Seal(env)
	if err != nil {
		t.Fatal(err)
	}
	signed := part{name: "signed", contentType: "application/jose", data: raw}
	other := []byte("tệp khác cùng cỡ")
	for _, tc := range []struct {
		name  string
		parts []part
		want  int
		code  string
	}{
		{"a file the manifest does not list", []part{signed, file("khac.txt", other)}, 400, "bad_request"},
		{"other bytes under a listed name", []part{signed, file("ky.txt", other)}, 413, "too_large"},
		{"other bytes of the same size", []part{signed, file("ky.txt", bytes.Repeat([]byte("x"), len(content)))}, 422, "invalid_envelope"},
		{"a file before the envelope", []part{file("ky.txt", content), signed}, 400, "bad_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(govOffice, tc.parts...)
			if r.StatusCode != tc.want || r.errCode(t) != tc.code {
				t.Fatalf("= %d %s, want %d %s", r.StatusCode, r.body, tc.want, tc.code)
			}
		})
	}
	for _, b := range [][]byte{other, bytes.Repeat([]byte("x"), len(content)), content} {
		if _, err := e.client.Store().Stat(ctxT(t), storage.Key(sum(b))); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a refused request's file %q is stored: %v", b, err)
		}
	}
	if r := e.post(govOffice, signed, file("ky.txt", content)); r.StatusCode != http.StatusCreated {
		t.Fatalf("the right file = %d %s", r.StatusCode, r.body)
	}
}

// TestSlowBody: a body that trickles is cut with 408; the answer is
// documented.
func TestSlowBody(t *testing.T) {
	e := newEnv(t, withLimits(httpapi.Limits{Rate: -1, BodyTimeout: 300 * time.Millisecond, MinBodyRate: 1 << 10}))
	for _, tc := range []struct{ path, ctype string }{
		{"/v1/envelopes", "multipart/form-data; boundary=xyz"},
		{"/v1/envelopes/" + envelope.NewID() + "/status", "application/json"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * time.Second)) // bounds the test only
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: 5000\r\n\r\n-",
				tc.path, e.tok[ngheAn], tc.ctype)
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			req, _ := http.NewRequest("POST", e.ts.URL+tc.path, nil)
			req.Header.Set("Content-Type", tc.ctype)
			e.spec.check(t, req, res, body)
			if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), `"timeout"`) || !res.Close {
				t.Fatalf("= %d %v %s", res.StatusCode, res.Header, body)
			}
		})
	}
}

// TestEventStreamCap: beyond the cap per token, 429 too_many_streams.
func TestEventStreamCap(t *testing.T) {
	e := newEnv(t, withLimits(httpapi.Limits{Rate: -1, MaxEventStreams: 1}))
	req, _ := http.NewRequestWithContext(ctxT(t), "GET", e.ts.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.tok[govOffice])
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("first stream = %d", res.StatusCode)
	}
	r := e.do("GET", "/v1/events", govOffice, nil)
	if r.StatusCode != http.StatusTooManyRequests || r.errCode(t) != "too_many_streams" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("second stream = %d %s", r.StatusCode, r.body)
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
