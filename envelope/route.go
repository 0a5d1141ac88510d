package envelope

import (
	"bytes"
	"encoding/base64"
	"sync"
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
	q := quickScans.Get().(*quickScan)
	defer func() {
		q.data, q.keys = nil, q.keys[:0]
		quickScans.Put(q)
	}()
	q.data, q.i, q.keys = p[:n], 0, q.keys[:0]
	var id, of string
	var status bool
	if !q.routeObject(1, &id, &of, &status) {
		return "", false
	}
	if status {
		return of, true
	}
	return id, true
}

// routeObject reads an object at q.i, taking "id" and "status" at the top
// (depth 1) and "of" inside "status" (depth 2), skipping the rest.
func (q *quickScan) routeObject(depth int, id, of *string, status *bool) bool {
	q.ws()
	if q.i >= len(q.data) || q.data[q.i] != '{' {
		return false
	}
	q.i++
	q.ws()
	if q.i < len(q.data) && q.data[q.i] == '}' {
		q.i++
		return true
	}
	for {
		q.ws()
		if q.i >= len(q.data) || q.data[q.i] != '"' {
			return false
		}
		start := q.i + 1
		if plain, ok := q.str(); !ok || !plain {
			return false
		}
		key := string(q.data[start : q.i-1])
		q.ws()
		if q.i >= len(q.data) || q.data[q.i] != ':' {
			return false
		}
		q.i++
		q.ws()
		switch {
		case depth == 1 && key == "id", depth == 2 && key == "of":
			if q.i >= len(q.data) || q.data[q.i] != '"' {
				return false
			}
			vs := q.i + 1
			if plain, ok := q.str(); !ok || !plain {
				return false
			}
			v := string(q.data[vs : q.i-1])
			if depth == 1 {
				*id = v
			} else {
				*of = v
			}
		case depth == 1 && key == "status":
			if q.i < len(q.data) && q.data[q.i] == 'n' {
				if !q.literal("null") {
					return false
				}
				*status = false
				break
			}
			*status = true
			if !q.routeObject(2, id, of, status) {
				return false
			}
		default:
			if !q.value(nil, depth) {
				return false
			}
		}
		q.ws()
		if q.i >= len(q.data) {
			return false
		}
		switch q.data[q.i] {
		case ',':
			q.i++
		case '}':
			q.i++
			return true
		default:
			return false
		}
	}
}
