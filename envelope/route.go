package envelope

import (
	"bytes"
	"encoding/base64"
	"sync"

	"github.com/docaxis/docaxis/signing/jws"
)

// RouteKey returns the envelope a signed message is about, read WITHOUT
// checking its signature: a status's "of", any other envelope's "id". It
// is for routing only (the tracker sends a copy and the statuses about it
// to one worker, in record order); never act on it as trusted. It reads
// the two fields alone, as written; a payload it cannot read so falls back
// to Peek. For a payload that verifies (strict keys: no duplicates, exact
// spelling) both give what the verified envelope says.
func RouteKey(raw []byte) (string, error) {
	if key, ok := routeKey(raw); ok {
		return key, nil
	}
	e, err := Peek(raw)
	if err != nil {
		return "", err
	}
	if e.Status != nil {
		return e.Status.Of, nil
	}
	return e.ID, nil
}

var routeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func routeKey(raw []byte) (string, bool) {
	if len(raw) > MaxWireSize {
		return "", false
	}
	first := bytes.IndexByte(raw, '.')
	last := bytes.LastIndexByte(raw, '.')
	if first < 0 || first == last {
		return "", false
	}
	seg := raw[first+1 : last]
	if bytes.IndexAny(seg, "\r\n") >= 0 {
		return "", false
	}
	bp := routeBufs.Get().(*[]byte)
	defer routeBufs.Put(bp)
	n := base64.RawURLEncoding.DecodedLen(len(seg))
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	p := (*bp)[:n]
	n, err := base64.RawURLEncoding.Strict().Decode(p, seg)
	if err != nil {
		return "", false
	}
	id, of, status, ok := jws.ScanRoute(p[:n])
	if !ok {
		return "", false
	}
	if status {
		return of, true
	}
	return id, true
}
