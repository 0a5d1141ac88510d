package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCheckKeys(t *testing.T) {
	tests := []struct {
		name, in string
		path     string // "" with ok
		ok       bool
	}{
		{"plain", `{"id":"a","to":["x"],"document":{"code_number":"1"}}`, "", true},
		{"same key twice", `{"id":"a","id":"b"}`, "", false},
		{"case variant", `{"id":"a","ID":"b"}`, "", false},
		{"escaped variant", `{"id":"a","\u0049D":"b"}`, "", false},
		{"kelvin sign", `{"k":1,"\u212a":2}`, "", false},
		{"long s", `{"subject":"a","ſubject":"b"}`, "", false},
		{"nested", `{"document":{"signer":"a","Signer":"b"}}`, "document", false},
		{"in an array", `{"attachments":[{"name":"a"},{"name":"b","NAME":"c"}]}`, "attachments[]", false},
		{"deep", `{"a":{"b":[[{"c":1,"C":2}]]}}`, "a.b[][]", false},
		{"same key in sibling objects", `{"a":{"id":1},"b":{"id":2}}`, "", true},
		{"same key at two depths", `{"id":1,"x":{"id":2}}`, "", true},
		{"not an object", `["id","id"]`, "", true},
		{"scalar", `"x"`, "", true},
		{"malformed is the decoder's", `{"id":`, "", true},
		{"only the first value", `{"a":1} {"a":1,"a":2}`, "", true},
		{"empty", ``, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkKeys([]byte(tc.in))
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var de *DuplicateKeyError
			if !errors.As(err, &de) || !errors.Is(err, ErrDuplicateKey) {
				t.Fatalf("= %v, want a *DuplicateKeyError", err)
			}
			if de.Path != tc.path {
				t.Fatalf("path = %q, want %q (%v)", de.Path, tc.path, err)
			}
		})
	}
}

// FuzzCheckKeys compares checkKeys with a plain reading of the rule (any
// two keys of one object equal under strings.EqualFold, which
// encoding/json's own matching equals) on every valid JSON document.
func FuzzCheckKeys(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","ID":"b"}`, `{"a":{"b":[{"c":1,"C":2}]}}`, `{"k":1,"\u212a":2}`,
		`{"subject":"x","to":["a","b"],"document":{"due_date":"2025-01-01"}}`, `[{"a":1},{"a":1}]`, `{"\ud800":1,"\ufffd":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := checkKeys(data)
		if err != nil && !errors.Is(err, ErrDuplicateKey) {
			t.Fatalf("unexpected error %v", err)
		}
		if !json.Valid(data) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		want := refDuplicate(t, dec)
		if got := err != nil; got != want {
			t.Fatalf("checkKeys = %v, reference says duplicate=%v for %q", err, want, data)
		}
	})
}

// refDuplicate reads one value from dec and reports whether an object in
// it has two keys equal under strings.EqualFold.
func refDuplicate(t *testing.T, dec *json.Decoder) bool {
	tok, err := dec.Token()
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	switch tok {
	case json.Delim('{'):
		var keys []string
		dup := false
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Fatalf("reference: %v", err)
			}
			for _, prev := range keys {
				if strings.EqualFold(prev, k.(string)) {
					dup = true
				}
			}
			keys = append(keys, k.(string))
			if refDuplicate(t, dec) {
				dup = true
			}
		}
		dec.Token() // '}'
		return dup
	case json.Delim('['):
		dup := false
		for dec.More() {
			if refDuplicate(t, dec) {
				dup = true
			}
		}
		dec.Token() // ']'
		return dup
	}
	return false
}
