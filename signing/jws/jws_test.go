package jws_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/signing/jws"
)

const cty = "application/vnd.docaxis.test+json"

func TestSignOpen(t *testing.T) {
	for _, s := range signers(t) {
		t.Run(s.name, func(t *testing.T) {
			payload := []byte(`{"a":1}`)
			raw, err := jws.Sign(payload, s.key, s.chain, jws.ContentType(cty), jws.KeyID())
			if err != nil {
				t.Fatal(err)
			}
			got, err := jws.Open(raw, jws.ContentType(cty))
			if err != nil {
				t.Fatal(err)
			}
			if got.Header.Alg != s.alg || got.Header.Typ != "JOSE" || got.Header.Cty != cty || got.Header.Kid != jws.Fingerprint(s.chain[0]) {
				t.Errorf("header = %+v", got.Header)
			}
			if !bytes.Equal(got.Payload, payload) || !bytes.Equal(got.Raw, raw) || len(got.Chain) != 2 || !got.Chain[0].Equal(s.chain[0]) {
				t.Errorf("opened = %+v", got)
			}
			// Without options: no kid, no cty; opened without a cty check.
			raw, err = jws.Sign(payload, s.key, s.chain)
			if err != nil {
				t.Fatal(err)
			}
			if got, err = jws.Open(raw); err != nil || got.Header.Kid != "" || got.Header.Cty != "" {
				t.Errorf("plain: %+v, %v", got, err)
			}
		})
	}
}

// TestHeaderCacheOptions: the signing header cache and the opening cache
// are shared by every caller; what one caller asks must not leak into
// another's bytes or checks.
func TestHeaderCacheOptions(t *testing.T) {
	s := signers(t)[0]
	a, err := jws.Sign([]byte(`{}`), s.key, s.chain, jws.ContentType("a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := jws.Sign([]byte(`{}`), s.key, s.chain, jws.ContentType("b"), jws.KeyID())
	if err != nil {
		t.Fatal(err)
	}
	if ha, hb := a[:bytes.IndexByte(a, '.')], b[:bytes.IndexByte(b, '.')]; bytes.Equal(ha, hb) {
		t.Fatal("two content types share one header")
	}
	for i := 0; i < 2; i++ { // the second round reads the cache
		if _, err := jws.Open(a, jws.ContentType("a")); err != nil {
			t.Fatal(err)
		}
		if _, err := jws.Open(a, jws.ContentType("b")); !errors.Is(err, jws.ErrMalformed) {
			t.Fatalf("round %d: cty a opened as b: %v", i, err)
		}
		if _, err := jws.Open(a, jws.Algorithms(jws.EdDSA)); !errors.Is(err, jws.ErrMalformed) {
			t.Fatalf("round %d: ES256 opened as EdDSA only: %v", i, err)
		}
	}
}

func TestSignRefuses(t *testing.T) {
	ss := signers(t)
	p256, ed := ss[0], ss[2]
	tests := []struct {
		name string
		sign func() ([]byte, error)
		err  error
		text string
	}{
		{"no chain", func() ([]byte, error) { return jws.Sign(nil, p256.key, nil) }, nil, "no certificate chain"},
		{"key of another leaf", func() ([]byte, error) { return jws.Sign(nil, p256.key, ed.chain) }, nil, "does not match the leaf"},
		{"algorithm not allowed", func() ([]byte, error) { return jws.Sign(nil, ed.key, ed.chain, jws.Algorithms(jws.ES256)) }, nil, "want ES256"},
		{"too large", func() ([]byte, error) {
			return jws.Sign(make([]byte, 2000), p256.key, p256.chain, jws.WithMaxSize(1000))
		}, jws.ErrTooLarge, "at most 1000"},
		{"too large with the signature", func() ([]byte, error) {
			raw, err := jws.Sign(nil, p256.key, p256.chain)
			if err != nil {
				return nil, err
			}
			return jws.Sign(nil, p256.key, p256.chain, jws.WithMaxSize(len(raw)-10))
		}, jws.ErrTooLarge, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := tt.sign()
			if err == nil || raw != nil || (tt.err != nil && !errors.Is(err, tt.err)) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("= %q, %v; want %v with %q", raw, err, tt.err, tt.text)
			}
		})
	}
}

// TestOpenRefuses: every way the bytes may differ from what Sign makes,
// each signed correctly, so that only the check under test can refuse.
func TestOpenRefuses(t *testing.T) {
	ss := signers(t)
	s, ed, rs := ss[0], ss[2], ss[3]
	good := b64([]byte(header(t, s, nil)))
	pl := b64([]byte(`{"a":1}`))
	valid := string(signSegments(t, s, good, pl))
	parts := strings.Split(valid, ".")
	tests := []struct {
		name string
		raw  string
		opts []jws.OpenOption
		err  error
		text string
	}{
		{"empty", "", nil, jws.ErrMalformed, "empty input"},
		{"bare JSON", `{"a":1}`, nil, jws.ErrUnsigned, "bare JSON"},
		{"JSON serialisation", `{"payload":"e30","signature":"x","protected":"x"}`, nil, jws.ErrMalformed, "JSON serialisation"},
		{"two parts", parts[0] + "." + parts[1], nil, jws.ErrMalformed, "three"},
		{"four parts", valid + ".x", nil, jws.ErrMalformed, "exactly three"},
		{"empty signature", parts[0] + "." + parts[1] + ".", nil, jws.ErrUnsigned, "empty signature"},
		{"padding", string(signSegments(t, s, good, pl+"=")), nil, jws.ErrMalformed, "payload"},
		{"line break", parts[0] + "." + parts[1] + "." + parts[2][:10] + "\n" + parts[2][10:], nil, jws.ErrMalformed, "line break"},
		{"alg none", string(signSegments(t, s, b64([]byte(header(t, s, map[string]any{"alg": "none"}))), pl)), nil, jws.ErrUnsigned, `alg "none"`},
		{"unknown alg", string(signSegments(t, s, b64([]byte(header(t, s, map[string]any{"alg": "HS256"}))), pl)), nil, jws.ErrMalformed, "not supported"},
		{"alg of another key", string(signSegments(t, s, b64([]byte(header(t, s, map[string]any{"alg": "EdDSA"}))), pl)), nil, jws.ErrBadSignature, "does not fit"},
		{"crit", string(signSegments(t, s, b64([]byte(header(t, s, map[string]any{"crit": []string{"exp"}}))), pl)), nil, jws.ErrMalformed, "crit"},
		{"unknown parameter", string(signSegments(t, s, b64([]byte(header(t, s, map[string]any{"jku": "https://evil"}))), pl)), nil, jws.ErrMalformed, `"jku"`},
		{"parameter in another case", string(signSegments(t, s, b64([]byte(`{"alg":"ES256","X5c":[]}`)), pl)), nil, jws.ErrMalformed, `"X5c"`},
		{"duplicate alg", string(signSegments(t, s, b64([]byte(`{"alg":"none","alg":"ES256","x5c":["`+x5c(s)[0]+`"]}`)), pl)), nil, jws.ErrMalformed, "duplicate"},
		{"no x5c", string(signSegments(t, s, b64([]byte(header(t, s, map[string]any{"x5c": nil}))), pl)), nil, jws.ErrMalformed, "x5c"},
		{"long x5c", string(signSegments(t, s, b64([]byte(header(t, s, map[string]any{"x5c": strings.Split(strings.Repeat(x5c(s)[0]+",", 9), ",")[:9]}))), pl)), nil, jws.ErrMalformed, "at most 8"},
		{"x5c not DER", string(signSegments(t, s, b64([]byte(header(t, s, map[string]any{"x5c": []string{"AAAA"}}))), pl)), nil, jws.ErrMalformed, "x5c[0]"},
		{"header not an object", string(signSegments(t, s, b64([]byte(`["alg"]`)), pl)), nil, jws.ErrMalformed, "object"},
		{"tampered payload", parts[0] + "." + b64([]byte(`{"a":2}`)) + "." + parts[2], nil, jws.ErrBadSignature, ""},
		{"short signature", parts[0] + "." + parts[1] + "." + b64([]byte("abc")), nil, jws.ErrBadSignature, "bytes"},
		{"signed by another key", parts[0] + "." + parts[1] + "." + string(signSegments(t, ed, parts[0], parts[1])[len(parts[0])+len(parts[1])+2:]), nil, jws.ErrBadSignature, ""},
		{"wrong content type", valid, []jws.OpenOption{jws.ContentType(cty)}, jws.ErrMalformed, "cty"},
		{"algorithm not allowed", string(signSegments(t, rs, b64([]byte(header(t, rs, nil))), pl)), []jws.OpenOption{jws.Algorithms(jws.ES256)}, jws.ErrMalformed, "want ES256"},
		{"too large", valid, []jws.OpenOption{jws.WithMaxSize(100)}, jws.ErrTooLarge, "at most 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jws.Open([]byte(tt.raw), tt.opts...)
			if err == nil || got != nil || !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("Open = %v, %v; want %v with %q", got, err, tt.err, tt.text)
			}
			var je *jws.Error
			if err != nil && !errors.As(err, &je) {
				t.Errorf("error is not a *jws.Error: %v", err)
			}
		})
	}
	if _, err := jws.Open([]byte(valid)); err != nil {
		t.Fatalf("the valid one: %v", err)
	}
}

func TestDecodeJSON(t *testing.T) {
	type T struct {
		A int    `json:"a"`
		B string `json:"b,omitempty"`
	}
	tests := []struct {
		json string
		err  error // nil: accepted; errAny: any error
	}{
		{`{"a":1,"b":"x"}`, nil},
		{` {"a":1}`, nil},
		{`{"a":1,"a":2}`, jws.ErrDuplicateKey},
		{`{"a":1,"A":2}`, jws.ErrDuplicateKey},
		{`{"A":1}`, jws.ErrKeySpelling},
		{`{"c":1}`, jws.ErrUnknownKey},
		{`{"a":1} {}`, jws.ErrJSONSyntax},
		{`[1]`, errAny},
		{`null`, errAny},
		{`{"a":"x"}`, errAny},
		{"{\"b\":\"\xff\"}", jws.ErrJSONSyntax},
	}
	for _, tt := range tests {
		var v T
		err := jws.DecodeJSON([]byte(tt.json), &v)
		switch {
		case tt.err == nil && err != nil, tt.err != nil && err == nil:
			t.Errorf("DecodeJSON(%s) = %v, want %v", tt.json, err, tt.err)
		case tt.err != nil && tt.err != errAny && !errors.Is(err, tt.err):
			t.Errorf("DecodeJSON(%s) = %v, want %v", tt.json, err, tt.err)
		}
	}
}

var errAny = errors.New("any error")

func TestDecodeSegment(t *testing.T) {
	for in, ok := range map[string]bool{"e30": true, "e30=": false, "e3\n0": false, "e3+0": false, "": true, "e31": false} {
		if _, err := jws.DecodeSegment([]byte(in)); (err == nil) != ok {
			t.Errorf("DecodeSegment(%q) = %v", in, err)
		}
	}
}

// Payload reads a compact JWS's payload without its signature (for a
// statement its reader signed itself), as strictly as Open reads it.
func TestPayload(t *testing.T) {
	s := signers(t)[0]
	payload := []byte(`{"seq":7}`)
	raw, err := jws.Sign(payload, s.key, s.chain)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := jws.Payload(append(raw, '\n')); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("Payload = %q, %v", got, err)
	}
	parts := strings.Split(string(raw), ".")
	for name, in := range map[string]string{
		"two parts":           parts[0] + "." + parts[1],
		"four parts":          string(raw) + ".x",
		"padding":             parts[0] + "." + parts[1] + "=." + parts[2],
		"line break":          parts[0] + "." + parts[1][:2] + "\n" + parts[1][2:] + "." + parts[2],
		"standard base64":     parts[0] + ".e3+0." + parts[2],
		"empty":               "",
		"over the size limit": parts[0] + "." + strings.Repeat("e", jws.MaxSize) + "." + parts[2],
	} {
		if got, err := jws.Payload([]byte(in)); err == nil {
			t.Errorf("%s: Payload = %q", name, got)
		}
	}
}
