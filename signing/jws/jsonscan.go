package jws

import (
	"reflect"
	"sync"
	"unicode/utf8"
)

// The quick pass of CheckJSONKeys. Every envelope, receipt and protected
// header on the bus is checked, and the token-by-token check (an
// allocation per token, a map per object) cost more than decoding the
// envelope. This pass reads the text once, allocates nothing, and answers
// only "certainly fine": it accepts a subset of what the full check
// accepts (FuzzQuickKeys holds it to that), and leaves everything else,
// bad or merely unusual, to the full check, which also explains refusals.
//
// It gives up on (and leaves to the full check): invalid JSON, keys with
// escapes or non-ASCII characters (folding them takes Unicode tables),
// objects of more than quickMaxKeys keys (duplicates are found by
// comparing each key with the earlier ones), nesting past MaxJSONDepth,
// and keys that do not fit an ExactFields struct.

// quickMaxKeys bounds the keys of one object the quick pass compares
// pairwise.
const quickMaxKeys = 48

type quickScan struct {
	data []byte
	i    int
	keys [][]byte // the keys of the open objects, innermost last
}

var quickScans = sync.Pool{New: func() any { return &quickScan{keys: make([][]byte, 0, 64)} }}

// quickKeysOK reports whether data certainly passes CheckJSONKeys with
// typ (nil: any shape).
func quickKeysOK(data []byte, typ reflect.Type) bool {
	if !utf8.Valid(data) {
		return false
	}
	q := quickScans.Get().(*quickScan)
	q.data, q.i, q.keys = data, 0, q.keys[:0]
	ok := q.value(typ, 0)
	if ok {
		q.ws()
		ok = q.i == len(q.data)
	}
	clear(q.keys[:cap(q.keys)]) // do not keep the caller's bytes alive
	q.data, q.keys = nil, q.keys[:0]
	quickScans.Put(q)
	return ok
}

func (q *quickScan) ws() {
	for q.i < len(q.data) {
		switch q.data[q.i] {
		case ' ', '\t', '\r', '\n':
			q.i++
		default:
			return
		}
	}
}

// value reads one value; depth counts the containers around it.
func (q *quickScan) value(typ reflect.Type, depth int) bool {
	q.ws()
	if q.i >= len(q.data) {
		return false
	}
	switch q.data[q.i] {
	case '{':
		return q.object(typ, depth+1)
	case '[':
		return q.array(typ, depth+1)
	case '"':
		_, ok := q.str()
		return ok
	case 't':
		return q.literal("true")
	case 'f':
		return q.literal("false")
	case 'n':
		return q.literal("null")
	}
	return q.number()
}

func (q *quickScan) object(typ reflect.Type, depth int) bool {
	t := deref(typ)
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = fieldsOf(t)
	}
	base := len(q.keys)
	ok := q.walkObject(depth, func(key []byte) bool {
		if len(q.keys)-base >= quickMaxKeys {
			return false
		}
		for _, k := range q.keys[base:] {
			if asciiEqualFold(k, key) {
				return false
			}
		}
		q.keys = append(q.keys, key)
		var next reflect.Type
		if t != nil {
			switch t.Kind() {
			case reflect.Struct:
				ft, ok := fields[string(key)]
				if !ok {
					return false
				}
				next = ft
			case reflect.Map:
				next = t.Elem()
			}
		}
		return q.value(next, depth)
	})
	q.keys = q.keys[:base]
	return ok
}

// walkObject reads the object at q.i (depth counts the containers up to
// it), calling member for each key with q.i at the key's value, which
// member must read (false: give up). It gives up on what the quick pass
// leaves to the full check: invalid JSON, a key with escapes or non-ASCII
// bytes, nesting past MaxJSONDepth. The quick pass (object) and ScanRoute
// both walk objects through it; the callback does not escape, so it costs
// no allocation.
func (q *quickScan) walkObject(depth int, member func(key []byte) bool) bool {
	if depth > MaxJSONDepth || q.i >= len(q.data) || q.data[q.i] != '{' {
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
		key := q.data[start : q.i-1]
		q.ws()
		if q.i >= len(q.data) || q.data[q.i] != ':' {
			return false
		}
		q.i++
		q.ws()
		if !member(key) {
			return false
		}
		if more, ok := q.next('}'); !more {
			return ok
		}
	}
}

func (q *quickScan) array(typ reflect.Type, depth int) bool {
	if depth > MaxJSONDepth {
		return false
	}
	q.i++ // '['
	et := elemType(typ)
	q.ws()
	if q.i < len(q.data) && q.data[q.i] == ']' {
		q.i++
		return true
	}
	for {
		if !q.value(et, depth) {
			return false
		}
		if more, ok := q.next(']'); !more {
			return ok
		}
	}
}

// next reads what follows a member or an element: a ',' (more), or the
// container's end (ok), or anything else (neither).
func (q *quickScan) next(end byte) (more, ok bool) {
	q.ws()
	if q.i >= len(q.data) {
		return false, false
	}
	switch q.data[q.i] {
	case ',':
		q.i++
		return true, false
	case end:
		q.i++
		return false, true
	}
	return false, false
}

// str reads a string at q.i (a '"'); plain reports that it holds neither
// escapes nor non-ASCII bytes, so its bytes are its value.
func (q *quickScan) str() (plain, ok bool) {
	plain = true
	for q.i++; q.i < len(q.data); q.i++ {
		c := q.data[q.i]
		switch {
		case c == '"':
			q.i++
			return plain, true
		case c < 0x20:
			return false, false
		case c >= utf8.RuneSelf:
			plain = false // valid UTF-8: checked before
		case c == '\\':
			plain = false
			q.i++
			if q.i >= len(q.data) {
				return false, false
			}
			switch q.data[q.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if q.i+4 >= len(q.data) {
					return false, false
				}
				for _, h := range q.data[q.i+1 : q.i+5] {
					if !isHex(h) {
						return false, false
					}
				}
				q.i += 4
			default:
				return false, false
			}
		}
	}
	return false, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func (q *quickScan) literal(word string) bool {
	if len(q.data)-q.i < len(word) || string(q.data[q.i:q.i+len(word)]) != word {
		return false
	}
	q.i += len(word)
	return true
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (q *quickScan) number() bool {
	d := q.data
	if q.i < len(d) && d[q.i] == '-' {
		q.i++
	}
	switch {
	case q.i < len(d) && d[q.i] == '0':
		q.i++
	case q.i < len(d) && '1' <= d[q.i] && d[q.i] <= '9':
		q.digits()
	default:
		return false
	}
	if q.i < len(d) && d[q.i] == '.' {
		q.i++
		if !q.digits() {
			return false
		}
	}
	if q.i < len(d) && (d[q.i] == 'e' || d[q.i] == 'E') {
		q.i++
		if q.i < len(d) && (d[q.i] == '+' || d[q.i] == '-') {
			q.i++
		}
		if !q.digits() {
			return false
		}
	}
	return true
}

// digits reads one or more digits.
func (q *quickScan) digits() bool {
	start := q.i
	for q.i < len(q.data) && '0' <= q.data[q.i] && q.data[q.i] <= '9' {
		q.i++
	}
	return q.i > start
}

// asciiEqualFold is foldKey(a) == foldKey(b) for ASCII a and b: the only
// non-ASCII runes that fold to ASCII letters (K, ſ) are not in them.
func asciiEqualFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
