package jws

// ScanRoute reads, from a JSON payload and without decoding it, the
// top-level "id" and, inside a non-null top-level "status" object, its
// "of" (status reports whether there was one): what a router needs to
// send an envelope and the statuses about it to one worker. It uses the
// quick pass's scanner, so it gives up (ok false) on anything unusual:
// escapes in the keys or the two values, invalid JSON. Never trust what it
// reads: the payload's signature is not checked.
func ScanRoute(payload []byte) (id, of string, status, ok bool) {
	q := quickScans.Get().(*quickScan)
	defer func() {
		q.data, q.keys = nil, q.keys[:0]
		quickScans.Put(q)
	}()
	q.data, q.i, q.keys = payload, 0, q.keys[:0]
	if !q.routeObject(1, &id, &of, &status) {
		return "", "", false, false
	}
	return id, of, status, true
}

// routeObject reads an object at q.i, taking "id" and "status" at the top
// (depth 1) and "of" inside "status" (depth 2), skipping the rest.
func (q *quickScan) routeObject(depth int, id, of *string, status *bool) bool {
	q.ws()
	return q.walkObject(depth, func(key []byte) bool {
		switch {
		case depth == 1 && string(key) == "id":
			return q.routeString(id)
		case depth == 2 && string(key) == "of":
			return q.routeString(of)
		case depth == 1 && string(key) == "status":
			if q.i < len(q.data) && q.data[q.i] == 'n' {
				*status = false
				return q.literal("null")
			}
			*status = true
			return q.routeObject(2, id, of, status)
		}
		return q.value(nil, depth)
	})
}

// routeString reads a string at q.i into v, giving up on anything but a
// string without escapes or non-ASCII bytes.
func (q *quickScan) routeString(v *string) bool {
	if q.i >= len(q.data) || q.data[q.i] != '"' {
		return false
	}
	start := q.i + 1
	if plain, ok := q.str(); !ok || !plain {
		return false
	}
	*v = string(q.data[start : q.i-1])
	return true
}
