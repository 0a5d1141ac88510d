package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Deadlines on the connection, per request, so that a client that sends
// or reads slowly on purpose cannot hold a connection and its handler
// open. http.Server's ReadTimeout and WriteTimeout bound a whole request,
// which would cut large uploads, downloads and event streams; these grow
// with the bytes that flow instead.

// SlowBodyError: a request body arrived slower than the minimum rate.
type SlowBodyError struct {
	Read    int64         // bytes received before the cut
	Elapsed time.Duration // since the body started
	Rate    int64         // minimum bytes per second
	Grace   time.Duration
}

func (e *SlowBodyError) Error() string {
	return fmt.Sprintf("request body too slow: %d bytes in %s; after %s a body must keep coming at %d bytes per second at least",
		e.Read, e.Elapsed.Round(time.Millisecond), e.Grace, e.Rate)
}

// pacedBody reads a request body under a read deadline that moves as
// bytes arrive: by start+grace+n/rate the client must have sent more than
// n bytes, and it may never pause longer than grace. A large upload at any
// useful speed earns time as it goes; a trickle (a byte every ten seconds)
// is cut once grace has passed.
type pacedBody struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  int64
	n     int64
	ended bool
}

// paceBody puts r's body under the deadline, when the connection allows
// deadlines (HTTP/1 and HTTP/2 servers do; test recorders do not).
func paceBody(w http.ResponseWriter, r *http.Request, grace time.Duration, rate int64) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	b := &pacedBody{body: r.Body, rc: http.NewResponseController(w), start: time.Now(), grace: grace, rate: rate}
	if err := b.rc.SetReadDeadline(b.deadline(b.start)); err != nil {
		return
	}
	r.Body = b
}

func (b *pacedBody) deadline(now time.Time) time.Time {
	d := b.start.Add(b.grace + time.Duration(float64(b.n)/float64(b.rate)*float64(time.Second)))
	if idle := now.Add(b.grace); idle.Before(d) {
		d = idle
	}
	return d
}

func (b *pacedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.n += int64(n)
	switch {
	case err == nil:
		_ = b.rc.SetReadDeadline(b.deadline(time.Now()))
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = &SlowBodyError{Read: b.n, Elapsed: time.Since(b.start), Rate: b.rate, Grace: b.grace}
	case errors.Is(err, io.EOF) && !b.ended:
		// The body is all in: the server now reads the connection in the
		// background to notice a client that goes away, and a deadline
		// left behind would end the request's context.
		b.ended = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *pacedBody) Close() error { return b.body.Close() }

// stallWriter gives each write to the client at most stall to complete:
// a download or an event stream to a client that stopped reading ends
// instead of holding the handler. The deadline it leaves is cleared when
// the connection's next request starts (Server.ServeHTTP).
type stallWriter struct {
	w     io.Writer
	rc    *http.ResponseController
	stall time.Duration
}

func newStallWriter(w http.ResponseWriter, stall time.Duration) *stallWriter {
	return &stallWriter{w: w, rc: http.NewResponseController(w), stall: stall}
}

func (s *stallWriter) Write(p []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.stall))
	return s.w.Write(p)
}

// Flush flushes under the same deadline.
func (s *stallWriter) Flush() error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.stall))
	return s.rc.Flush()
}
