package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrDuplicateKey: a JSON object has two keys that encoding/json takes for
// one (see checkKeys).
var ErrDuplicateKey = errors.New("duplicate key in JSON object")

// DuplicateKeyError names the two keys and where they are.
type DuplicateKeyError struct {
	Path  string // the object holding them, e.g. "document"; "" at the top
	Key   string // the later key
	First string // the earlier one (equal to Key, or a case variant)
}

func (e *DuplicateKeyError) Error() string {
	where := ""
	if e.Path != "" {
		where = " in " + e.Path
	}
	if e.Key == e.First {
		return fmt.Sprintf("key %q appears twice%s: every key must be unique", e.Key, where)
	}
	return fmt.Sprintf("keys %q and %q%s differ only in case: every key must be unique, case aside", e.First, e.Key, where)
}

func (e *DuplicateKeyError) Unwrap() error { return ErrDuplicateKey }

// checkKeys walks the first JSON value in data and refuses an object with
// two keys that encoding/json would match to one field: the same key
// twice, or keys equal under its case folding ("id" and "ID", "k" and the
// Kelvin sign). encoding/json silently keeps the last, so a value checked
// on one reading of a body could be swapped for another; the body is
// refused instead. Syntax errors are left to the decoder that follows.
func checkKeys(data []byte) error {
	type frame struct {
		object  bool
		wantKey bool
		path    string            // where this container is, e.g. "document"
		keys    map[string]string // folded -> as written
		last    string            // the key whose value is being read
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*frame
	// valueDone is called when a value ends; it reports whether that was
	// the whole top-level value.
	valueDone := func() bool {
		if len(stack) == 0 {
			return true
		}
		if top := stack[len(stack)-1]; top.object {
			top.wantKey = true
		}
		return false
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // EOF, or malformed: the decoder reports it with its position
		}
		var top *frame
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		if top != nil && top.object && top.wantKey {
			if k, ok := tok.(string); ok {
				f := foldKey(k)
				if first, dup := top.keys[f]; dup {
					return &DuplicateKeyError{Path: top.path, Key: k, First: first}
				}
				top.keys[f] = k
				top.last, top.wantKey = k, false
				continue
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			path := ""
			switch {
			case top == nil:
			case top.object && top.path == "":
				path = top.last
			case top.object:
				path = top.path + "." + top.last
			default:
				path = top.path + "[]"
			}
			f := &frame{object: tok == json.Delim('{'), wantKey: true, path: path}
			if f.object {
				f.keys = map[string]string{}
			}
			stack = append(stack, f)
		case json.Delim(']'), json.Delim('}'):
			if len(stack) == 0 {
				return nil
			}
			stack = stack[:len(stack)-1]
			if valueDone() {
				return nil
			}
		default:
			if valueDone() {
				return nil
			}
		}
	}
}

// foldKey folds a key as encoding/json matches keys to fields (its
// foldName): ASCII letters to upper case, any other rune to the smallest
// rune of its simple case-folding orbit.
func foldKey(k string) string {
	var b strings.Builder
	b.Grow(len(k))
	for _, r := range k {
		switch {
		case r < utf8.RuneSelf:
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
		default:
			for {
				r2 := unicode.SimpleFold(r)
				if r2 <= r {
					r = r2
					break
				}
				r = r2
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}
