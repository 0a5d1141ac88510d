package jws_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	. "github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing/jws"
)

// quickTypes are the shapes the bus checks texts against.
var quickTypes = []reflect.Type{nil, reflect.TypeOf(Envelope{}), reflect.TypeOf(Header{})}

// FuzzQuickKeys holds the quick pass to what it must be: whatever it
// accepts, the full check accepts too (it may leave more to the full
// check, never less).
func FuzzQuickKeys(f *testing.F) {
	for _, s := range []string{`{"a":1,"A":2}`, `{"a":{"b":[{"c":1,"c":2}]}}`, `[1,2,{"k":"\u212a"}]`, `{"\u212a":1,"k":2}`,
		`"x"`, `{}}`, `{"a":1e999}`, `{"a":-0.5E+3}`, `{"a":01}`, `{"a":1.}`, `{"a":"\u00zz"}`, `{"a":"\ud800"}`, "{\"a\":\"\x01\"}",
		`{"id":"x","from":"A","From":"B"}`, `{"status":{"details":{"x":{"y":[true,false,null]}}}}`, ` {"to":[ "a" , "b" ] } `,
		`{"alg":"ES256","x5c":["AA"]}`, strings.Repeat("[", 33) + strings.Repeat("]", 33), "{\"a\":\"\xff\"}", `{"a":1,}`, `[1,]`, `tru`, `nul`} {
		f.Add([]byte(s))
	}
	e := quickEnvelope()
	b, _ := json.Marshal(e)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range quickTypes {
			if jws.QuickKeysOK(data, typ) {
				if err := jws.CheckJSONKeysSlow(data, typ); err != nil {
					t.Fatalf("quick pass accepted %q (as %v), the full check says %v", data, typ, err)
				}
			}
		}
	})
}

func quickEnvelope() *Envelope {
	e := New("000.00.00.G22", []string{"000.00.00.H41", "000.00.00.H14"}, "Công văn \"mẫu\" <1>")
	e.Body = "Nội dung\nthứ hai\t\\"
	e.Document = &Document{CodeNumber: "12", CodeNotation: "VPCP-TTĐT", Type: "CV", Signer: &Signer{FullName: "Nguyễn Văn A"}}
	e.Attachments = []Attachment{{Name: "a.pdf", MediaType: "application/pdf", Size: 12, SHA256: strings.Repeat("a", 64), Key: "k"}}
	e.Extra = map[string]string{"edxml.Foo": "bar"}
	return e
}

// The texts the bus makes itself take the quick pass: envelopes,
// receipts, protected headers.
func TestQuickKeysTakesWhatTheBusWrites(t *testing.T) {
	st := NewStatus("000.00.00.H41", "000.00.00.G22", NewID(), StateDelivered)
	st.Status.Digest = strings.Repeat("b", 64)
	st.Status.Details = map[string]any{"a.pdf": map[string]any{"signed": true, "signers": []any{"x"}}}
	st.Created = time.Now()
	for _, tc := range []struct {
		name string
		v    any
		typ  reflect.Type
	}{
		{"document", quickEnvelope(), reflect.TypeOf(Envelope{})},
		{"receipt", st, reflect.TypeOf(Envelope{})},
		{"header", Header{Alg: ES256, Typ: "JOSE", Cty: ContentType, Kid: "k", X5c: []string{"AA", "BB"}}, reflect.TypeOf(Header{})},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if !jws.QuickKeysOK(b, tc.typ) {
			t.Errorf("%s: the quick pass leaves %s to the full check", tc.name, b)
		}
		if err := jws.CheckJSONKeysSlow(b, tc.typ); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// What the full check refuses, the quick pass leaves to it.
func TestQuickKeysLeavesRefusals(t *testing.T) {
	for _, s := range []string{`{"from":"A","From":"B"}`, `{"sender":"A"}`, `{"From":"A"}`, `{"a":1}}`, ``, `{"a":`,
		strings.Repeat(`{"a":`, jws.MaxJSONDepth+1) + "1" + strings.Repeat("}", jws.MaxJSONDepth+1), `{"extra":{"k":"a","K":"b"}}`} {
		if jws.QuickKeysOK([]byte(s), reflect.TypeOf(Envelope{})) {
			t.Errorf("quick pass accepted %q", s)
		}
	}
}
