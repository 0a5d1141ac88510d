package vxp

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The SDK sends its parameters as XroadVnpt-* headers and, all together,
// as the signed JSON of XroadVnpt-sign-header. Only the signed JSON is
// trusted (PROTOCOL.md §3); the separate headers are ignored. The SDK
// never clears its map, so every call also carries the keys of earlier
// calls (§2): an operation reads only the keys it uses.

// headerPrefix is the prefix of every signed key.
const headerPrefix = "XroadVnpt-"

// maxSignHeader bounds the signed header (net/http bounds all headers too).
const maxSignHeader = 32 << 10

// Params are the signed parameters of one request, keys without the
// XroadVnpt- prefix, spelled as the DMS wrote them.
type Params struct {
	keys []string
	vals map[string]string
}

// Get returns the value of key: the key spelled exactly so first (DMS
// code writes both docId and docid, and VNPT's own getEdoc path reads
// docId), then any spelling of it.
func (p Params) Get(key string) string {
	if v, ok := p.vals[key]; ok {
		return v
	}
	for _, k := range p.keys {
		if strings.EqualFold(k, key) {
			return p.vals[k]
		}
	}
	return ""
}

// Keys returns the keys in the order they were signed.
func (p Params) Keys() []string { return append([]string(nil), p.keys...) }

// ErrSignHeader is wrapped by the errors of ParseSignHeader.
var ErrSignHeader = errors.New("malformed XroadVnpt-sign-header")

// ParseSignHeader decodes the value of XroadVnpt-sign-header: one flat
// JSON object whose keys all start with XroadVnpt- and whose values are
// strings (numbers and booleans are taken as their text, as the SDK's
// getAsString does). A key present twice is refused: which of the two was
// signed for is not clear.
func ParseSignHeader(raw []byte) (Params, error) {
	p := Params{vals: map[string]string{}}
	if len(raw) > maxSignHeader {
		return p, fmt.Errorf("%w: %d bytes, at most %d", ErrSignHeader, len(raw), maxSignHeader)
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return p, fmt.Errorf("%w: not a JSON object", ErrSignHeader)
	}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return p, fmt.Errorf("%w: %v", ErrSignHeader, err)
		}
		name, _ := t.(string)
		key, found := strings.CutPrefix(name, headerPrefix)
		if !found || key == "" {
			return p, fmt.Errorf("%w: key %q does not start with %s", ErrSignHeader, name, headerPrefix)
		}
		if _, dup := p.vals[key]; dup {
			return p, fmt.Errorf("%w: key %q twice", ErrSignHeader, name)
		}
		t, err = d.Token()
		if err != nil {
			return p, fmt.Errorf("%w: value of %s: %v", ErrSignHeader, name, err)
		}
		var v string
		switch x := t.(type) {
		case string:
			v = x
		case json.Number:
			v = x.String()
		case bool:
			v = strconv.FormatBool(x)
		default:
			return p, fmt.Errorf("%w: value of %s is not a string", ErrSignHeader, name)
		}
		p.keys = append(p.keys, key)
		p.vals[key] = v
	}
	if t, err := d.Token(); err != nil || t != json.Delim('}') {
		return p, fmt.Errorf("%w: unterminated object", ErrSignHeader)
	}
	if _, err := d.Token(); err == nil {
		return p, fmt.Errorf("%w: data after the object", ErrSignHeader)
	}
	return p, nil
}

// LossyHex is the SDK's hex of a digest (hash-file): each byte with
// Integer.toHexString, so without its leading zero (0x0d is "d").
func LossyHex(sum []byte) string {
	var b strings.Builder
	for _, c := range sum {
		b.WriteString(strconv.FormatUint(uint64(c), 16))
	}
	return b.String()
}

// HashFile is hash-file of a file's bytes as the SDK computes it.
func HashFile(file []byte) string {
	sum := sha256.Sum256(file)
	return LossyHex(sum[:])
}

// ParseLenientObject reads a flat object the way Gson's lenient reader
// does for what DMSes write: keys and values quoted with " or ', or not at
// all (ending at , } or ; or a line end); separators , or ;; key and value
// split by : or = or =>. Nested objects and arrays are kept as their text.
// registerAgency's data is such a string (VNPT's own example is not JSON).
func ParseLenientObject(s string) (map[string]string, error) {
	l := &lenient{s: s}
	l.space()
	if !l.eat('{') {
		return nil, errors.New("not an object: it does not start with '{'")
	}
	out := map[string]string{}
	for {
		l.space()
		if l.eat('}') {
			break
		}
		if l.done() {
			return nil, errors.New("unterminated object: no closing '}'")
		}
		key, err := l.value(true)
		if err != nil {
			return nil, fmt.Errorf("key at byte %d: %w", l.i, err)
		}
		l.space()
		if !l.eat(':') && !l.eat('=') {
			return nil, fmt.Errorf("key %q at byte %d: no ':' after it", key, l.i)
		}
		l.eat('>')
		l.space()
		val, err := l.value(false)
		if err != nil {
			return nil, fmt.Errorf("value of %q: %w", key, err)
		}
		out[key] = val
		l.space()
		if !l.eat(',') && !l.eat(';') && !l.peek('}') {
			return nil, fmt.Errorf("after %q at byte %d: want ',' or '}'", key, l.i)
		}
	}
	l.space()
	if !l.done() {
		return nil, fmt.Errorf("data after the object at byte %d", l.i)
	}
	return out, nil
}

type lenient struct {
	s string
	i int
}

func (l *lenient) done() bool { return l.i >= len(l.s) }

func (l *lenient) peek(c byte) bool { return l.i < len(l.s) && l.s[l.i] == c }

func (l *lenient) eat(c byte) bool {
	if l.peek(c) {
		l.i++
		return true
	}
	return false
}

func (l *lenient) space() {
	for l.i < len(l.s) && strings.IndexByte(" \t\r\n", l.s[l.i]) >= 0 {
		l.i++
	}
}

// value reads a quoted, nested or bare value.
func (l *lenient) value(key bool) (string, error) {
	if l.done() {
		return "", errors.New("missing")
	}
	switch q := l.s[l.i]; q {
	case '"', '\'':
		start := l.i
		l.i++
		var b strings.Builder
		for !l.done() {
			c := l.s[l.i]
			switch {
			case c == q:
				l.i++
				if q == '"' {
					// A JSON string: decode its escapes exactly.
					var v string
					if err := json.Unmarshal([]byte(l.s[start:l.i]), &v); err == nil {
						return v, nil
					}
				}
				return b.String(), nil
			case c == '\\' && l.i+1 < len(l.s):
				b.WriteByte(l.s[l.i+1])
				l.i += 2
			default:
				b.WriteByte(c)
				l.i++
			}
		}
		return "", fmt.Errorf("unterminated quote from byte %d", start)
	case '{', '[':
		if key {
			return "", errors.New("an object cannot be a key")
		}
		start, depth := l.i, 0
		for ; !l.done(); l.i++ {
			switch l.s[l.i] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					l.i++
					return l.s[start:l.i], nil
				}
			}
		}
		return "", fmt.Errorf("unterminated %c from byte %d", q, start)
	}
	start := l.i
	stop := ",;}\r\n"
	if key {
		stop = ":=,;}\r\n"
	}
	for !l.done() && strings.IndexByte(stop, l.s[l.i]) < 0 {
		l.i++
	}
	v := strings.TrimSpace(l.s[start:l.i])
	if v == "" && key {
		return "", errors.New("empty")
	}
	if !key && v == "null" {
		return "", nil
	}
	return v, nil
}
