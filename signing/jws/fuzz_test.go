package jws_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/docaxis/docaxis/signing/jws"
)

// openClasses are the documented error classes of Open.
var openClasses = []error{jws.ErrMalformed, jws.ErrUnsigned, jws.ErrBadSignature, jws.ErrTooLarge}

func checkOpenError(t *testing.T, got *jws.Signed, err error) {
	t.Helper()
	if got != nil {
		t.Fatalf("Open returned both a result and %v", err)
	}
	var je *jws.Error
	if !errors.As(err, &je) {
		t.Fatalf("Open error is not a *jws.Error: %v", err)
	}
	for _, class := range openClasses {
		if errors.Is(err, class) {
			return
		}
	}
	t.Fatalf("Open error outside the documented classes: %v", err)
}

// FuzzOpen: Open never panics, fails only with a documented error, and
// what it accepts it accepts again the same way (the header cache), with
// the payload Payload reads without the signature.
func FuzzOpen(f *testing.F) {
	for _, s := range signers(f) {
		raw, err := jws.Sign([]byte(`{"a":1}`), s.key, s.chain, jws.ContentType("x"), jws.KeyID())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	for _, s := range []string{"", ".", "..", "a.b.c", "e30.e30.", `{"payload":"e30","signature":""}`, "e30.e30.e30", "eyJhbGciOiJub25lIn0.e30.AA"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// Payload, which skips the signature, reads what Open reads.
		payload, perr := jws.Payload(raw)
		var je *jws.Error
		if perr != nil && !errors.As(perr, &je) {
			t.Fatalf("Payload error is not a *jws.Error: %v", perr)
		}
		got, err := jws.Open(raw)
		if err != nil {
			checkOpenError(t, got, err)
			return
		}
		if perr != nil || !bytes.Equal(payload, got.Payload) {
			t.Fatalf("Open gives payload %q, Payload %q, %v", got.Payload, payload, perr)
		}
		if !bytes.Equal(got.Raw, raw) || len(got.Chain) == 0 || len(got.Chain) > jws.MaxChain || len(got.Header.X5c) != len(got.Chain) {
			t.Fatalf("Open succeeded with an incomplete result: %+v", got)
		}
		again, err := jws.Open(raw)
		if err != nil || !reflect.DeepEqual(again.Header, got.Header) || !bytes.Equal(again.Payload, got.Payload) {
			t.Fatalf("second Open differs: %v", err)
		}
	})
}

// FuzzOpenSigned signs whatever header and payload the fuzzer makes with a
// real key, so that the checks behind the signature are reached: what
// Open accepts names the signer's algorithm and leaf, carries only the
// parameters Open knows, and gives back the signed payload.
func FuzzOpenSigned(f *testing.F) {
	s := signers(f)[2] // Ed25519: fast and deterministic
	hdr := header(f, s, nil)
	f.Add([]byte(hdr), []byte(`{"a":1}`))
	f.Add([]byte(`{"alg":"EdDSA","alg":"none","x5c":[]}`), []byte(`{}`))
	f.Add([]byte(`{"alg":"EdDSA","crit":["x"],"x5c":["AAAA"]}`), []byte(`{}`))
	f.Add([]byte(`{"alg":"none"}`), []byte(`{}`))
	f.Add([]byte(`{"alg":"EdDSA","Alg":"ES256","x5c":[]}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, hj, payload []byte) {
		raw := signSegments(t, s, b64(hj), b64(payload))
		got, err := jws.Open(raw)
		if err != nil {
			checkOpenError(t, got, err)
			return
		}
		if got.Header.Alg != jws.EdDSA || !got.Chain[0].Equal(s.chain[0]) {
			t.Fatalf("Open accepted header %s", hj)
		}
		var params map[string]json.RawMessage
		if err := json.Unmarshal(hj, &params); err != nil {
			t.Fatalf("Open accepted a header encoding/json cannot read: %s", hj)
		}
		for k := range params {
			switch k {
			case "alg", "typ", "cty", "kid", "x5c":
			default:
				t.Fatalf("Open accepted parameter %q", k)
			}
		}
		if !bytes.Equal(got.Payload, payload) {
			t.Fatal("Signed.Payload is not the signed payload")
		}
	})
}
