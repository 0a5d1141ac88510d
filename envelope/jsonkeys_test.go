package envelope_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/envelope"
)

func TestCheckJSONKeys(t *testing.T) {
	deep := strings.Repeat(`{"a":`, envelope.MaxJSONDepth+1) + "1" + strings.Repeat("}", envelope.MaxJSONDepth+1)
	deepOK := strings.Repeat(`[`, envelope.MaxJSONDepth) + strings.Repeat("]", envelope.MaxJSONDepth)
	tests := []struct {
		name  string
		json  string
		exact bool  // ExactFields(envelope.Envelope{})
		err   error // nil: accepted
		text  string
	}{
		{name: "object", json: `{"a":1,"b":{"c":[1,{"d":null}]},"A1":"x"}`},
		{name: "scalar", json: ` "x" `},
		{name: "array of objects with the same keys", json: `[{"a":1},{"a":2}]`},
		{name: "same key in sibling objects", json: `{"x":{"k":1},"y":{"k":1}}`},
		{name: "at the depth limit", json: deepOK},
		{name: "huge number", json: `{"n":1e999}`},
		{name: "duplicate", json: `{"from":"A","from":"B"}`, err: envelope.ErrDuplicateKey, text: `top level: duplicate JSON key: key "from" twice`},
		{name: "case variant", json: `{"from":"A","From":"B"}`, err: envelope.ErrDuplicateKey, text: `keys "from" and "From" differ only in case`},
		{name: "Kelvin sign folds to k", json: `{"kind":"document","\u212aind":"status"}`, err: envelope.ErrDuplicateKey},
		{name: "long s folds to s", json: `{"subject":"a","\u017fubject":"b"}`, err: envelope.ErrDuplicateKey},
		{name: "escaped duplicate", json: `{"to":[],"t\u006f":[]}`, err: envelope.ErrDuplicateKey},
		{name: "nested duplicate", json: `{"status":{"of":"x","staff":{"name":"a","NAME":"b"}}}`, err: envelope.ErrDuplicateKey, text: "status.staff:"},
		{name: "duplicate in an array element", json: `{"attachments":[{"name":"a"},{"name":"a","Name":"b"}]}`, err: envelope.ErrDuplicateKey, text: "attachments[]:"},
		{name: "too deep", json: deep, err: envelope.ErrJSONDepth},
		{name: "too deep in arrays", json: "[" + deepOK + "]", err: envelope.ErrJSONDepth},
		{name: "trailing brace", json: `{"a":1}}`, err: envelope.ErrJSONSyntax, text: "trailing data"},
		{name: "two values", json: `{} {}`, err: envelope.ErrJSONSyntax, text: "trailing data"},
		{name: "truncated", json: `{"a":`, err: envelope.ErrJSONSyntax},
		{name: "empty", json: ``, err: envelope.ErrJSONSyntax},
		{name: "not JSON", json: `{a:1}`, err: envelope.ErrJSONSyntax},
		{name: "invalid UTF-8", json: "{\"subject\":\"\xff\"}", err: envelope.ErrJSONSyntax, text: "UTF-8"},
		// ExactFields: the keys of the envelope's structs as spelled in their tags.
		{name: "exact envelope keys", json: `{"id":"x","status":{"details":{"Any":{"Key":1}}},"extra":{"K":"v"}}`, exact: true},
		{name: "field in another case", json: `{"From":"A"}`, exact: true, err: envelope.ErrKeySpelling, text: `"From" for the field "from"`},
		{name: "nested field in another case", json: `{"document":{"Signer":{}}}`, exact: true, err: envelope.ErrKeySpelling, text: "document:"},
		{name: "unknown field", json: `{"sender":"A"}`, exact: true, err: envelope.ErrUnknownKey},
		{name: "case variants in extra", json: `{"extra":{"k":"a","K":"b"}}`, exact: true, err: envelope.ErrDuplicateKey, text: "extra:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []envelope.JSONCheckOption
			if tc.exact {
				opts = append(opts, envelope.ExactFields(envelope.Envelope{}))
			}
			err := envelope.CheckJSONKeys([]byte(tc.json), opts...)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("CheckJSONKeys(%s) = %v", tc.json, err)
				}
				return
			}
			var ke *envelope.JSONKeyError
			if !errors.Is(err, tc.err) || !errors.As(err, &ke) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("CheckJSONKeys(%s) = %v, want %v saying %q", tc.json, err, tc.err, tc.text)
			}
		})
	}
}

// TestDecodePayloadAmbiguousKeys: a signed payload that encoding/json would
// read one way and another reader another way verifies as nothing.
func TestDecodePayloadAmbiguousKeys(t *testing.T) {
	good := string(mustJSON(t, validEnvelope()))
	tests := []struct {
		name, payload string
		err           error
	}{
		{"from twice", strings.Replace(good, `"from":`, `"from":"000.00.00.H99","from":`, 1), envelope.ErrDuplicateKey},
		{"From after from", strings.Replace(good, `"subject":`, `"From":"000.00.00.H99","subject":`, 1), envelope.ErrDuplicateKey},
		{"From instead of from", strings.Replace(good, `"from":`, `"From":`, 1), envelope.ErrKeySpelling},
		{"to twice", strings.Replace(good, `"to":`, `"to":["000.00.00.H99"],"to":`, 1), envelope.ErrDuplicateKey},
		{"attachment name twice", strings.Replace(good, `"name":`, `"name":"CON","NAME":`, 1), envelope.ErrDuplicateKey},
		{"invalid UTF-8", strings.Replace(good, `"subject":"`, "\"subject\":\"\xc3", 1), envelope.ErrJSONSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.payload == good {
				t.Fatal("test payload unchanged")
			}
			e, err := envelope.DecodePayload([]byte(tc.payload))
			if !errors.Is(err, envelope.ErrMalformed) || !errors.Is(err, tc.err) || e != nil {
				t.Fatalf("DecodePayload = %v, %v; want ErrMalformed and %v", e, err, tc.err)
			}
			// Signed as it is, it does not open either.
			s := signerFor(t, "P-256")
			raw := signRaw(t, s, header(s), []byte(tc.payload))
			if _, err := envelope.Open(raw); !errors.Is(err, envelope.ErrMalformed) || !errors.Is(err, tc.err) {
				t.Fatalf("Open = %v, want ErrMalformed and %v", err, tc.err)
			}
			// Peek, for naming the refused envelope, still reads it.
			if tc.err != envelope.ErrJSONSyntax {
				if p, err := envelope.Peek(raw); err != nil || p.ID == "" {
					t.Fatalf("Peek = %v, %v", p, err)
				}
			}
		})
	}
	if _, err := envelope.DecodePayload([]byte(good)); err != nil {
		t.Fatalf("the good payload: %v", err)
	}
}

// TestSealRefusesAmbiguousJSON: the sender cannot sign what every recipient
// would refuse.
func TestSealRefusesAmbiguousJSON(t *testing.T) {
	s := signerFor(t, "P-256")
	e := validEnvelope()
	e.Extra = map[string]string{"edxml.k": "a", "EDXML.K": "b"}
	if _, err := envelope.Seal(e, s.key, s.chain); !errors.Is(err, envelope.ErrInvalid) || !strings.Contains(err.Error(), "differ only in case") {
		t.Fatalf("Seal with case-variant extra keys: %v", err)
	}
	st := envelope.NewStatus(codeB, codeA, envelope.NewID(), envelope.StateDelivered)
	st.Status.Details = map[string]any{"a.pdf": map[string]any{"ok": true, "OK": false}}
	if _, err := envelope.Seal(st, s.key, s.chain); !errors.Is(err, envelope.ErrInvalid) || !errors.Is(err, envelope.ErrDuplicateKey) {
		t.Fatalf("Seal with case-variant detail keys: %v", err)
	}
}

// FuzzCheckJSONKeys: what CheckJSONKeys accepts is one valid JSON value in
// which no object has two keys encoding/json could confuse, and its
// verdict does not change when encoding/json writes the value back.
func FuzzCheckJSONKeys(f *testing.F) {
	for _, s := range []string{`{"a":1,"A":2}`, `{"a":{"b":[{"c":1,"c":2}]}}`, `[1,2,{"k":"\u212a"}]`, `{"\u212a":1,"k":2}`,
		`"x"`, `{}}`, `{"a":1e999}`, strings.Repeat("[", 40) + strings.Repeat("]", 40), "{\"a\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Add(mustJSON(f, validEnvelope()))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := envelope.CheckJSONKeys(data)
		if err != nil {
			var ke *envelope.JSONKeyError
			if !errors.As(err, &ke) {
				t.Fatalf("error %T is not a *JSONKeyError: %v", err, err)
			}
			if json.Valid(data) && errors.Is(err, envelope.ErrJSONSyntax) && bytes.Equal(bytes.ToValidUTF8(data, nil), data) {
				t.Fatalf("valid JSON called malformed: %v", err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("accepted JSON does not decode: %v", err)
		}
		if n, m := countKeys(data), countTree(v); n != m {
			t.Fatalf("%d keys in the text, %d after decoding: a duplicate got through", n, m)
		}
		checkFolds(t, v)
	})
}

// countKeys counts the keys of every object in data, as written.
func countKeys(data []byte) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct{ object, expectKey bool }
	var stack []*frame
	n := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		if len(stack) > 0 {
			top := stack[len(stack)-1]
			if top.object && top.expectKey {
				if tok == json.Delim('}') {
					stack = stack[:len(stack)-1]
					continue
				}
				n++
				top.expectKey = false
				continue
			}
			if top.object {
				top.expectKey = true // this token is the value
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, expectKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

func countTree(v any) int {
	switch x := v.(type) {
	case map[string]any:
		n := len(x)
		for _, e := range x {
			n += countTree(e)
		}
		return n
	case []any:
		n := 0
		for _, e := range x {
			n += countTree(e)
		}
		return n
	}
	return 0
}

// checkFolds fails when an object holds two keys bytes.EqualFold matches,
// as encoding/json does.
func checkFolds(t *testing.T, v any) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k, e := range x {
			for _, o := range keys {
				if strings.EqualFold(o, k) {
					t.Fatalf("keys %q and %q accepted in one object", o, k)
				}
			}
			keys = append(keys, k)
			checkFolds(t, e)
		}
	case []any:
		for _, e := range x {
			checkFolds(t, e)
		}
	}
}
