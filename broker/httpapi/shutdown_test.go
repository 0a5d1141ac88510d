package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestGracefulShutdown: an upload in flight when shutdown starts is
// finished and sent; event streams end; no new connection is accepted.
func TestGracefulShutdown(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()

	// An event stream that shutdown has to end.
	evReq, _ := http.NewRequest("GET", base+"/v1/events", nil)
	evReq.Header.Set("Authorization", "Bearer "+e.tok[govOffice])
	evRes, err := http.DefaultClient.Do(evReq)
	if err != nil {
		t.Fatal(err)
	}
	defer evRes.Body.Close()

	// An upload that is half sent when shutdown starts.
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	chunk := bytes.Repeat([]byte("dữ liệu "), 64<<10)
	halfSent := make(chan struct{})
	finish := make(chan struct{})
	go func() {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="meta"`)
		w, _ := mw.CreatePart(h)
		w.Write([]byte(`{"to":["000.00.00.H41"],"subject":"Gửi trong lúc dừng máy chủ"}`))
		fw, _ := mw.CreateFormFile("file", "lớn.bin")
		fw.Write(chunk)
		close(halfSent)
		<-finish
		fw.Write(chunk)
		mw.Close()
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", base+"/v1/envelopes", pr)
	req.Header.Set("Authorization", "Bearer "+e.tok[govOffice])
	req.Header.Set("Content-Type", mw.FormDataContentType())
	type result struct {
		status int
		body   []byte
		err    error
	}
	uploaded := make(chan result, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			uploaded <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		uploaded <- result{status: res.StatusCode, body: b}
	}()
	<-halfSent
	time.Sleep(100 * time.Millisecond) // the server is reading the file part

	start := time.Now()
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stopped <- e.srv.Shutdown(ctx)
	}()
	time.Sleep(200 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("a new connection was accepted during shutdown")
	}
	select {
	case err := <-stopped:
		t.Fatalf("shutdown returned (%v) with an upload in flight", err)
	default:
	}
	close(finish)

	r := <-uploaded
	if r.err != nil || r.status != http.StatusCreated {
		t.Fatalf("upload in flight during shutdown = %d %s %v", r.status, r.body, r.err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("shutdown took %s: the event stream held it", took)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, err := io.ReadAll(evRes.Body); err != nil {
		t.Fatalf("event stream did not end cleanly: %v", err)
	}
	var out struct{ ID string }
	json.Unmarshal(r.body, &out)
	st, err := e.client.Status(ctxT(t), out.ID)
	if err != nil || len(st.Recipients) != 1 {
		t.Fatalf("status of the envelope sent during shutdown = %+v, %v", st, err)
	}
}

// TestUploadIsStreamed sends an attachment much larger than the memory
// the server may use for it: the bytes go to the store as they arrive.
func TestUploadIsStreamed(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 96 MiB")
	}
	e := newEnv(t)
	const size = 96 << 20
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	h := sha256.New()
	go func() {
		mw.WriteField("meta", `{"to":["000.00.00.H41"],"subject":"Tệp lớn"}`)
		fw, _ := mw.CreateFormFile("file", "lớn.bin")
		buf := make([]byte, 1<<20)
		for i := 0; i < size/len(buf); i++ {
			for j := range buf {
				buf[j] = byte(i + j*7)
			}
			h.Write(buf)
			if _, err := fw.Write(buf); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		mw.Close()
		pw.Close()
	}()

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			// The live heap, not the garbage a collection would free.
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
		}
	}()
	req, _ := http.NewRequest("POST", e.ts.URL+"/v1/envelopes", pr)
	req.Header.Set("Authorization", "Bearer "+e.tok[govOffice])
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res := e.send(req)
	close(stop)
	<-sampled
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("upload = %d %s", res.StatusCode, res.body)
	}
	grew := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("live heap grew by %d MiB at most while %d MiB went through", grew>>20, size>>20)
	// The embedded NATS server shares this heap (some 25-30 MiB for its
	// caches and buffers, whatever the size); holding the file would add
	// all of it.
	if grew > 60<<20 {
		t.Fatalf("live heap grew by %d MiB for a %d MiB upload: the upload is held in memory", grew>>20, size>>20)
	}
	var inbox struct {
		Envelopes []envelopeJSON
	}
	e.do("GET", "/v1/inbox", ngheAn, nil).json(t, &inbox)
	if len(inbox.Envelopes) != 1 || inbox.Envelopes[0].Attachments[0].Size != int64(size) || inbox.Envelopes[0].Attachments[0].SHA256 != hex.EncodeToString(h.Sum(nil)) {
		t.Fatalf("inbox = %+v", inbox)
	}
}
