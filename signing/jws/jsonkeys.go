package jws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// MaxJSONDepth bounds the nesting of objects and arrays CheckJSONKeys
// accepts. An envelope nests five deep; verification details a few more.
const MaxJSONDepth = 32

var (
	// ErrDuplicateKey: an object holds the same key twice, or two keys that
	// differ only in case. encoding/json matches keys case-insensitively
	// and keeps the last, another JSON reader may keep the first or see two
	// fields: {"from":"A","From":"B"} means something else to each.
	ErrDuplicateKey = errors.New("duplicate JSON key")
	// ErrKeySpelling: a key names a field in another case than its JSON
	// name ("From" for "from"): encoding/json accepts it, other readers
	// see an unknown field and no "from".
	ErrKeySpelling = errors.New("JSON key spelled differently from its field")
	// ErrUnknownKey: a key that names no field (with ExactFields).
	ErrUnknownKey = errors.New("unknown JSON key")
	// ErrJSONDepth: objects and arrays nested deeper than MaxJSONDepth.
	ErrJSONDepth = errors.New("JSON nested too deep")
	// ErrJSONSyntax: not one well-formed JSON value.
	ErrJSONSyntax = errors.New("malformed JSON")
)

// JSONKeyError says where in a JSON text a key check failed.
type JSONKeyError struct {
	Path string // e.g. "status.staff" ("" for the top level)
	Key  string
	Err  error // one of the sentinels above
	Msg  string
}

func (e *JSONKeyError) Error() string {
	where := e.Path
	if where == "" {
		where = "top level"
	}
	return fmt.Sprintf("%s: %v: %s", where, e.Err, e.Msg)
}

func (e *JSONKeyError) Unwrap() error { return e.Err }

// JSONCheckOption adjusts CheckJSONKeys.
type JSONCheckOption func(*jsonCheck)

type jsonCheck struct {
	typ reflect.Type
}

// ExactFields makes CheckJSONKeys hold the text to the shape of v (a value
// or pointer of the type the text decodes into): every key of an object
// that decodes into a struct must be the JSON name of one of its fields,
// spelled exactly. Maps, interfaces and types with their own UnmarshalJSON
// take any key (still without duplicates).
func ExactFields(v any) JSONCheckOption {
	return func(c *jsonCheck) { c.typ = reflect.TypeOf(v) }
}

// CheckJSONKeys refuses JSON that readers could understand in different
// ways: a key twice in one object, two keys that differ only in case (as
// encoding/json folds them: Unicode simple folding, so "K" and the Kelvin
// sign K match), nesting deeper than MaxJSONDepth, trailing data, invalid
// UTF-8. Run it on bytes before json.Unmarshal trusts them; errors are
// *JSONKeyError matching ErrDuplicateKey, ErrKeySpelling, ErrUnknownKey,
// ErrJSONDepth or ErrJSONSyntax.
func CheckJSONKeys(data []byte, opts ...JSONCheckOption) error {
	var c jsonCheck
	for _, o := range opts {
		o(&c)
	}
	// Every signed envelope, receipt and header goes through here, and
	// nearly all of them are fine: one pass without allocations says so
	// (jsonscan.go). Anything it does not accept at once, bad or only
	// unusual (escaped or non-ASCII keys, big objects), gets the full check
	// below, which finds and names the problem.
	if quickKeysOK(data, c.typ) {
		return nil
	}
	return checkJSONKeysSlow(data, c)
}

// checkJSONKeysSlow is CheckJSONKeys token by token: the reference the
// quick pass must agree with, and the one that explains a refusal.
func checkJSONKeysSlow(data []byte, c jsonCheck) error {
	if !utf8.Valid(data) {
		return &JSONKeyError{Err: ErrJSONSyntax, Msg: "not valid UTF-8 (a decoder would change it)"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are not checked: no float overflow to refuse
	var stack []*keyFrame
	syntax := func(err error) error {
		path := ""
		if len(stack) > 0 {
			path = stack[len(stack)-1].path
		}
		return &JSONKeyError{Path: path, Err: ErrJSONSyntax, Msg: err.Error()}
	}
	for started := false; ; started = true {
		if started && len(stack) == 0 {
			// One whole value read: nothing may follow but white space.
			if rest := bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
				return syntax(errors.New("trailing data after the value"))
			}
			return nil
		}
		tok, err := dec.Token()
		if err == io.EOF {
			return syntax(io.ErrUnexpectedEOF)
		}
		if err != nil {
			return syntax(err)
		}
		var top *keyFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expectKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			key, _ := tok.(string) // the decoder gives keys as strings
			if err := top.key(key); err != nil {
				return err
			}
			continue
		}
		// A value, of the type its container says.
		var typ reflect.Type
		path := ""
		switch {
		case top == nil:
			typ = c.typ
		case top.object:
			typ, path = top.next, joinPath(top.path, top.last)
			top.expectKey = true
		default:
			typ, path = elemType(top.typ), top.path+"[]"
		}
		d, ok := tok.(json.Delim)
		if !ok {
			continue
		}
		switch d {
		case '{', '[':
			if len(stack) >= MaxJSONDepth {
				return &JSONKeyError{Path: path, Err: ErrJSONDepth, Msg: fmt.Sprintf("objects and arrays nested deeper than %d", MaxJSONDepth)}
			}
			f := &keyFrame{object: d == '{', expectKey: d == '{', path: path, typ: typ}
			if f.object {
				f.seen = make(map[string]string)
			}
			stack = append(stack, f)
		case ']':
			stack = stack[:len(stack)-1]
		}
	}
}

// keyFrame is an open object or array of CheckJSONKeys.
type keyFrame struct {
	object    bool
	expectKey bool
	path      string
	seen      map[string]string // folded key -> key as written
	typ       reflect.Type      // what the container decodes into; nil: any shape
	last      string            // the key of the value being read
	next      reflect.Type      // its type
}

// key checks the key of the next member of an object.
func (f *keyFrame) key(key string) error {
	folded := foldKey(key)
	if prev, dup := f.seen[folded]; dup {
		msg := fmt.Sprintf("key %q twice", key)
		if prev != key {
			msg = fmt.Sprintf("keys %q and %q differ only in case", prev, key)
		}
		return &JSONKeyError{Path: f.path, Key: key, Err: ErrDuplicateKey, Msg: msg}
	}
	f.seen[folded] = key
	f.last, f.expectKey = key, false
	f.next = nil
	t := deref(f.typ)
	switch {
	case t == nil:
	case t.Kind() == reflect.Map:
		f.next = t.Elem()
	case t.Kind() == reflect.Struct:
		fields := fieldsOf(t)
		ft, ok := fields[key]
		if !ok {
			for name := range fields {
				if foldKey(name) == folded {
					return &JSONKeyError{Path: f.path, Key: key, Err: ErrKeySpelling, Msg: fmt.Sprintf("%q for the field %q", key, name)}
				}
			}
			return &JSONKeyError{Path: f.path, Key: key, Err: ErrUnknownKey, Msg: fmt.Sprintf("%q", key)}
		}
		f.next = ft
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// deref strips pointers; nil for a type that takes any shape (interface,
// own UnmarshalJSON).
func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	return t
}

func elemType(t reflect.Type) reflect.Type {
	if t = deref(t); t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
		return t.Elem()
	}
	return nil
}

var fieldCache sync.Map // reflect.Type -> map[string]reflect.Type

func fieldsOf(t reflect.Type) map[string]reflect.Type {
	if v, ok := fieldCache.Load(t); ok {
		return v.(map[string]reflect.Type)
	}
	m := jsonFields(t)
	fieldCache.Store(t, m)
	return m
}

// jsonFields maps a struct's JSON names to their types, as encoding/json
// names them (tag name, else the Go name; embedded structs promoted).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type)
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" {
			if et := deref(sf.Type); et != nil && et.Kind() == reflect.Struct {
				for k, v := range jsonFields(et) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out[name] = sf.Type
	}
	return out
}

// foldKey maps every key that encoding/json would match with s (Unicode
// simple case folding, as bytes.EqualFold) to one string.
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}
