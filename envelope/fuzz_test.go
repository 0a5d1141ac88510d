package envelope_test

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/docaxis/docaxis/envelope"
)

// fuzzSeeds returns valid signed envelopes of every key type and a few
// near misses, so that the fuzzer starts next to the interesting paths.
func fuzzSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	// RSA is left out to keep worker start-up short; testdata/fuzz/FuzzOpen
	// holds an RS256 seed.
	for _, name := range []string{"P-256", "P-384", "Ed25519"} {
		s := signerFor(f, name)
		raw, err := envelope.Seal(validEnvelope(), s.key, s.chain)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, raw)
	}
	good := seeds[0]
	h, p, sig := parts(f, good)
	seeds = append(seeds,
		[]byte(h+"."+p+"."),
		[]byte(h+"."+p),
		[]byte(h+"."+p+"."+sig+"."+sig),
		[]byte(h+"."+p+"."+sig[:len(sig)-2]),
		[]byte("."+p+"."+sig),
		mustJSON(f, validEnvelope()),
		[]byte("{}"),
		[]byte(""),
		[]byte(".."),
		[]byte("eyJhbGciOiJub25lIn0.e30."),
		[]byte(h+"."+b64([]byte("null"))+"."+sig),
	)
	return seeds
}

// FuzzOpen checks that no input makes Open or Peek panic, that every
// refusal carries one of the documented error classes, and that Open is
// deterministic: the same bytes give the same envelope (the caches must not
// change an answer).
func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if _, err := envelope.Peek(raw); err != nil && !errors.Is(err, envelope.ErrMalformed) && !errors.Is(err, envelope.ErrTooLarge) {
			t.Errorf("Peek error outside the documented classes: %v", err)
		}
		s, err := envelope.Open(raw)
		if err != nil {
			if s != nil {
				t.Errorf("Open returned both a result and %v", err)
			}
			for _, class := range []error{envelope.ErrMalformed, envelope.ErrUnsigned, envelope.ErrBadSignature, envelope.ErrTooLarge} {
				if errors.Is(err, class) {
					return
				}
			}
			t.Errorf("Open error outside the documented classes: %v", err)
			return
		}
		if !bytes.Equal(s.Raw, raw) || len(s.Chain) == 0 || s.Envelope == nil {
			t.Fatalf("Open succeeded with an incomplete result: %+v", s)
		}
		again, err := envelope.Open(raw)
		if err != nil {
			t.Fatalf("second Open of the same bytes: %v", err)
		}
		if !reflect.DeepEqual(again.Envelope, s.Envelope) || !reflect.DeepEqual(again.Header, s.Header) || !bytes.Equal(again.Payload, s.Payload) {
			t.Fatalf("second Open differs:\n%+v\n%+v", again.Envelope, s.Envelope)
		}
		// What Open verified, Peek reads the same way.
		peeked, err := envelope.Peek(raw)
		if err != nil || !reflect.DeepEqual(peeked, s.Envelope) {
			t.Fatalf("Peek = %+v, %v; Open gave %+v", peeked, err, s.Envelope)
		}
	})
}

// FuzzDecodePayload checks that DecodePayload never panics, and that what
// it accepts survives an encode/decode round trip unchanged.
func FuzzDecodePayload(f *testing.F) {
	f.Add(mustJSON(f, validEnvelope()))
	f.Add(mustJSON(f, envelope.NewStatus(codeB, codeA, envelope.NewID(), envelope.StateDone)))
	for _, s := range []string{`{}`, `null`, `[]`, `{"id":1}`, `{"to":null}`, `{} }`, `{"extra":{"a":"b"}}`,
		`{"status":{"details":{"x":[1,{"y":null}]}}}`, `{"created":"2026-01-02T03:04:05.123+07:00"}`, "{\"subject\":\"\\ud800\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		e, err := envelope.DecodePayload(p)
		if err != nil {
			if !errors.Is(err, envelope.ErrMalformed) {
				t.Errorf("DecodePayload error is not ErrMalformed: %v", err)
			}
			return
		}
		b := mustJSON(t, e)
		e2, err := envelope.DecodePayload(b)
		if err != nil {
			t.Fatalf("re-decoding our own encoding: %v\n%s", err, b)
		}
		if b2 := mustJSON(t, e2); !bytes.Equal(b, b2) {
			t.Fatalf("encoding not stable:\n%s\n%s", b, b2)
		}
	})
}

// FuzzCheckCode checks the promise behind Token: every code an operator
// may register maps to one NATS subject token and back.
func FuzzCheckCode(f *testing.F) {
	for _, c := range append(standardCodes, "", "TEST", "vn.gov.pilot-1", "a..b", ".a", "a.", "a_b", "a.*", "a.>", "a b", "Sở", "\xff", strings.Repeat("a", 65)) {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, code string) {
		if envelope.IsStandardCode(code) {
			if err := envelope.CheckCode(code); err != nil {
				t.Fatalf("standard code %q refused by CheckCode: %v", code, err)
			}
			if err := envelope.CheckNonStandardCode(code); err != nil {
				t.Fatalf("standard code %q refused by CheckNonStandardCode: %v", code, err)
			}
		} else if err := envelope.CheckCode(code); !errors.Is(err, envelope.ErrInvalidCode) {
			t.Fatalf("CheckCode(%q) = %v", code, err)
		}
		if err := envelope.CheckNonStandardCode(code); err != nil {
			if !errors.Is(err, envelope.ErrInvalidCode) {
				t.Fatalf("CheckNonStandardCode(%q) = %v", code, err)
			}
			return
		}
		tok := envelope.Token(code)
		if tok == "" || strings.ContainsAny(tok, ".*>") || strings.IndexFunc(tok, unicode.IsSpace) >= 0 {
			t.Fatalf("Token(%q) = %q is not a single NATS subject token", code, tok)
		}
		if back := envelope.CodeFromToken(tok); back != code {
			t.Fatalf("CodeFromToken(Token(%q)) = %q", code, back)
		}
	})
}

// FuzzParseState checks that ParseState never panics, returns only known
// states, and that a parsed state parses again to itself.
func FuzzParseState(f *testing.F) {
	for _, s := range []string{"sent", "delivered", "DONE", " 3 ", "03", "3", "13", "0", "", "00", "recall-refused", "đã xong", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		st, err := envelope.ParseState(in)
		if err != nil {
			if !errors.Is(err, envelope.ErrUnknownState) || st != "" {
				t.Fatalf("ParseState(%q) = %q, %v", in, st, err)
			}
			return
		}
		if !st.Valid() {
			t.Fatalf("ParseState(%q) = unknown state %q", in, st)
		}
		if again, err := envelope.ParseState(string(st)); err != nil || again != st {
			t.Fatalf("ParseState(%q) = %q, %v", st, again, err)
		}
		if c := st.Code(); c != "" {
			if again, err := envelope.ParseState(c); err != nil || again != st {
				t.Fatalf("ParseState(code %q) = %q, %v; want %s", c, again, err, st)
			}
		}
	})
}

// FuzzOpenSigned fuzzes what lies behind the signature: the header and
// payload JSON are signed as given, so that Open's header, chain and
// payload checks see mutated input a plain FuzzOpen seldom gets past the
// signature with.
func FuzzOpenSigned(f *testing.F) {
	s := signerFor(f, "Ed25519")
	hdr := mustJSON(f, header(s))
	f.Add(hdr, mustJSON(f, validEnvelope()))
	f.Add(hdr, mustJSON(f, envelope.NewStatus(codeB, codeA, envelope.NewID(), envelope.StateAccepted)))
	f.Add(hdr, []byte(`{}`))
	f.Add(hdr, []byte(`null`))
	f.Add([]byte(`{"alg":"EdDSA","alg":"none","x5c":[]}`), []byte(`{}`))
	f.Add([]byte(`{"alg":"EdDSA","crit":["x"],"x5c":["AAAA"]}`), []byte(`{}`))
	f.Add([]byte(`{"alg":"none"}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, hj, payload []byte) {
		raw := signSegments(t, s, envelope.EdDSA, b64(hj), b64(payload))
		got, err := envelope.Open(raw)
		if err != nil {
			for _, class := range []error{envelope.ErrMalformed, envelope.ErrUnsigned, envelope.ErrBadSignature, envelope.ErrTooLarge} {
				if errors.Is(err, class) {
					return
				}
			}
			t.Fatalf("Open error outside the documented classes: %v", err)
		}
		if got.Header.Alg != envelope.EdDSA || !got.Chain[0].Equal(s.chain[0]) {
			t.Fatalf("Open accepted header %s", hj)
		}
		if !bytes.Equal(got.Payload, payload) {
			t.Fatal("Signed.Payload is not the signed payload")
		}
		want, err := envelope.DecodePayload(payload)
		if err != nil || !reflect.DeepEqual(want, got.Envelope) {
			t.Fatalf("Open's envelope differs from DecodePayload's: %v", err)
		}
	})
}
