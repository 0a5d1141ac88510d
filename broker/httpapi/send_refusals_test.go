package httpapi_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
)

// waitFor polls cond until it holds (the server's directory and limits
// follow the bus's through a watch).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx := ctxT(t)
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: never", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func suspend(t *testing.T, e *env, code string) {
	t.Helper()
	ctx := ctxT(t)
	if err := e.bus.Service.Client.UpdateAgency(ctx, code, func(prev *broker.Agency) (broker.Agency, error) {
		a := *prev
		a.State = broker.StateSuspended
		return a, nil
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server sees "+code+" suspended", func() bool {
		a, err := e.client.LookupAgency(ctx, code)
		return err == nil && a.State == broker.StateSuspended
	})
}

// Refusals the bus makes for reasons the DMS can act on are answered as
// such, not as 500 internal: a recipient that takes no mail, the bus's
// limits, its publish rate (with when to ask again).
func TestSendRefusalsAnsweredWithTheirCause(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	suspend(t, e, sonLa)
	if err := e.bus.Service.Client.SetLimits(ctx, broker.Limits{MaxAttachments: 1, PublishRate: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server sees the limits", func() bool { return e.client.Limits().PublishRate == 1 })
	to := func(code string) part { return meta(`{"to":["` + code + `"],"subject":"Từ chối"}`) }
	for _, c := range []struct {
		name   string
		parts  []part
		status int
		code   string
	}{
		{"suspended recipient", []part{to(sonLa), file("a.txt", []byte("a"))}, http.StatusUnprocessableEntity, "inactive_agency"},
		{"over the bus's attachment limit", []part{to(ngheAn), file("a.txt", []byte("a")), file("b.txt", []byte("b"))}, http.StatusRequestEntityTooLarge, "too_large"},
		{"within the limits", []part{to(ngheAn)}, http.StatusCreated, ""},
		{"over the publish rate", []part{to(ngheAn)}, http.StatusTooManyRequests, "rate_limited"},
	} {
		r := e.post(govOffice, c.parts...)
		if r.StatusCode != c.status {
			t.Fatalf("%s: %d %s, want %d", c.name, r.StatusCode, r.body, c.status)
		}
		if c.code != "" && r.errCode(t) != c.code {
			t.Errorf("%s: code %s, want %s", c.name, r.errCode(t), c.code)
		}
		if c.status == http.StatusTooManyRequests {
			if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("%s: Retry-After %q", c.name, r.Header.Get("Retry-After"))
			}
		}
	}
}

// A send to a recipient that takes no mail is refused on its meta part,
// before the server reads the files that follow: of a 32 MiB file, no
// more than what the multipart reader buffers is read.
func TestSendToInactiveRecipientRefusedBeforeFiles(t *testing.T) {
	e := newEnv(t)
	suspend(t, e, sonLa)
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="meta"`)
	h.Set("Content-Type", "application/json")
	w, _ := mw.CreatePart(h)
	io.WriteString(w, `{"to":["`+sonLa+`"],"subject":"Tệp lớn"}`)
	h = textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="lon.bin"`)
	mw.CreatePart(h)
	const size = 32 << 20
	body := &countingReader{r: io.MultiReader(&head, io.LimitReader(zeros{}, size), strings.NewReader("\r\n--"+mw.Boundary()+"--\r\n"))}
	req := httptest.NewRequest("POST", "/v1/envelopes", body)
	req.Header.Set("Authorization", "Bearer "+e.tok[govOffice])
	req.Header.Set("Content-Type", mw.FormDataContentType())
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnprocessableEntity || !strings.Contains(rec.Body.String(), "inactive_agency") {
		t.Fatalf("send to a suspended agency: %d %s", rec.Code, rec.Body)
	}
	if body.n > 1<<20 {
		t.Fatalf("the server read %d bytes of the body before refusing the meta part", body.n)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
