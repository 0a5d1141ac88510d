package envelope_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/envelope"
)

func TestSealOpenRoundTrip(t *testing.T) {
	for _, s := range signers(t) {
		t.Run(s.name, func(t *testing.T) {
			e := validEnvelope()
			raw, err := envelope.Seal(e, s.key, s.chain)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			got, err := envelope.Open(raw)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !bytes.Equal(got.Raw, raw) {
				t.Error("Signed.Raw is not the bytes that were opened")
			}
			if got.Header.Alg != s.alg || got.Header.Cty != envelope.ContentType {
				t.Errorf("header = %+v, want alg %s and cty %s", got.Header, s.alg, envelope.ContentType)
			}
			if got.Header.Kid != envelope.Fingerprint(s.chain[0]) {
				t.Errorf("kid = %q, want the leaf fingerprint", got.Header.Kid)
			}
			if len(got.Chain) != len(s.chain) {
				t.Fatalf("chain has %d certificates, want %d", len(got.Chain), len(s.chain))
			}
			for i := range s.chain {
				if !got.Chain[i].Equal(s.chain[i]) {
					t.Errorf("chain[%d] differs", i)
				}
			}
			if !reflect.DeepEqual(got.Envelope, e) {
				t.Errorf("envelope changed in transit:\n got %+v\nwant %+v", got.Envelope, e)
			}
			// The payload is decoded from the bytes that travelled, not
			// re-encoded: it is exactly the middle segment.
			_, pseg, sseg := parts(t, raw)
			if !bytes.Equal(got.Payload, unb64(t, pseg)) {
				t.Error("Signed.Payload is not the decoded middle segment of Raw")
			}
			if !bytes.Equal(got.Signature, unb64(t, sseg)) {
				t.Error("Signed.Signature is not the decoded last segment of Raw")
			}
			want, _ := json.Marshal(e)
			if !bytes.Equal(got.Payload, want) {
				t.Errorf("payload = %s, want %s", got.Payload, want)
			}
			fromPayload, err := envelope.DecodePayload(got.Payload)
			if err != nil || !reflect.DeepEqual(fromPayload, got.Envelope) {
				t.Errorf("DecodePayload(Payload) = %+v, %v; want the opened envelope", fromPayload, err)
			}
			if got.Digest() != envelope.Digest(raw) || len(got.Digest()) != 64 {
				t.Errorf("Digest = %q, want the SHA-256 of Raw", got.Digest())
			}
			// Opening the same bytes again (served from the caches) gives
			// the same answer.
			again, err := envelope.Open(raw)
			if err != nil || !reflect.DeepEqual(again.Envelope, got.Envelope) || !reflect.DeepEqual(again.Header, got.Header) {
				t.Errorf("second Open = %+v, %v", again, err)
			}
		})
	}
}

// TestOpenPS256 checks that an RSA certificate may sign with PSS: agencies'
// existing RSA keys are used either way.
func TestOpenPS256(t *testing.T) {
	s := signerFor(t, "RSA-2048")
	h := header(s)
	h["alg"] = envelope.PS256
	raw := signRaw(t, s, h, mustJSON(t, validEnvelope()))
	got, err := envelope.Open(raw)
	if err != nil {
		t.Fatalf("Open(PS256) = %v", err)
	}
	if got.Header.Alg != envelope.PS256 {
		t.Errorf("alg = %s", got.Header.Alg)
	}
}

func TestSignatureNotDeterministicButBothVerify(t *testing.T) {
	// ECDSA signatures are randomised; both must verify and carry the
	// same payload.
	s := signerFor(t, "P-256")
	e := validEnvelope()
	a, err := envelope.Seal(e, s.key, s.chain)
	if err != nil {
		t.Fatal(err)
	}
	b, err := envelope.Seal(e, s.key, s.chain)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range [][]byte{a, b} {
		if _, err := envelope.Open(raw); err != nil {
			t.Errorf("Open = %v", err)
		}
	}
}

func TestSealChoosesChainPerCall(t *testing.T) {
	// The protected header is cached per signing chain; a different chain
	// for the same leaf must not get the cached header of the first.
	s := signerFor(t, "Ed25519")
	e := validEnvelope()
	for _, chain := range [][]*x509.Certificate{s.chain[:1], s.chain, s.chain[:1]} {
		raw, err := envelope.Seal(e, s.key, chain)
		if err != nil {
			t.Fatal(err)
		}
		got, err := envelope.Open(raw)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Chain) != len(chain) || len(got.Header.X5c) != len(chain) {
			t.Errorf("sealed with %d certificates, x5c carries %d", len(chain), len(got.Header.X5c))
		}
	}
}

func TestSealRefuses(t *testing.T) {
	p256, ed := signerFor(t, "P-256"), signerFor(t, "Ed25519")
	big := validEnvelope()
	for i := range 500 {
		a := big.Attachments[0]
		a.Name = strings.Repeat("x", 200) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)
		a.Description = strings.Repeat("d", 2000)
		big.Attachments = append(big.Attachments[:i], a)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		run   func() ([]byte, error)
		want  error
		fault string
	}{
		{"invalid envelope", func() ([]byte, error) {
			e := validEnvelope()
			e.Subject = ""
			return envelope.Seal(e, p256.key, p256.chain)
		}, envelope.ErrInvalid, "subject"},
		{"too large", func() ([]byte, error) { return envelope.Seal(big, p256.key, p256.chain) }, envelope.ErrTooLarge, "at most"},
		{"no chain", func() ([]byte, error) { return envelope.Seal(validEnvelope(), p256.key, nil) }, nil, "no certificate chain"},
		{"key not the leaf's", func() ([]byte, error) { return envelope.Seal(validEnvelope(), ed.key, p256.chain) }, nil, "does not match"},
		{"unsupported curve", func() ([]byte, error) { return envelope.Sign([]byte("{}"), p521, p256.chain) }, nil, "P-521"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := tt.run()
			if err == nil {
				t.Fatalf("got %d bytes, want an error", len(raw))
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.fault) {
				t.Errorf("err = %q, want it to mention %q", err, tt.fault)
			}
		})
	}
}

func TestAlgorithmFor(t *testing.T) {
	for _, s := range signers(t) {
		if alg, err := envelope.AlgorithmFor(s.key.Public()); err != nil || alg != s.alg {
			t.Errorf("AlgorithmFor(%s) = %s, %v; want %s", s.name, alg, err, s.alg)
		}
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.AlgorithmFor(small.Public()); err == nil {
		t.Error("AlgorithmFor(RSA-1024) = nil error")
	}
	if _, err := envelope.AlgorithmFor("not a key"); err == nil {
		t.Error("AlgorithmFor(string) = nil error")
	}
}

// TestOpenRefuses feeds Open every kind of bad input a mailbox may see and
// checks that each gets the error class and a message saying what is wrong.
func TestOpenRefuses(t *testing.T) {
	p256, rsaS, ed, p384 := signerFor(t, "P-256"), signerFor(t, "RSA-2048"), signerFor(t, "Ed25519"), signerFor(t, "P-384")
	e := validEnvelope()
	good, err := envelope.Seal(e, p256.key, p256.chain)
	if err != nil {
		t.Fatal(err)
	}
	hseg, pseg, sseg := parts(t, good)
	payload := mustJSON(t, e)
	withHeader := func(f func(h map[string]any)) []byte {
		h := header(p256)
		f(h)
		return signRaw(t, p256, h, payload)
	}
	withPayload := func(p string) []byte { return signRaw(t, p256, header(p256), []byte(p)) }
	join := func(ss ...string) []byte { return []byte(strings.Join(ss, ".")) }
	// flip changes one byte of the decoded payload and re-encodes it, as a
	// tamperer would.
	flip := func() string {
		b := unb64(t, pseg)
		i := bytes.Index(b, []byte("thử nghiệm"))
		b[i] = 'T'
		return b64(b)
	}
	// lastBits alters only the unused low bits of the final character, which
	// a lax decoder maps to the same bytes.
	lastBits := func(seg string) string {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		c := strings.IndexByte(alphabet, seg[len(seg)-1])
		return seg[:len(seg)-1] + string(alphabet[c^1])
	}
	manyCerts := make([]string, 9)
	for i := range manyCerts {
		manyCerts[i] = x5c(p256.chain)[0]
	}
	small := smallRSASigner(t)
	p521 := p521Signer(t)
	jsonSerialised := mustJSON(t, map[string]string{"protected": hseg, "payload": pseg, "signature": sseg})

	tests := []struct {
		name  string
		in    []byte
		want  error
		fault string // part of the message
	}{
		{"empty", nil, envelope.ErrMalformed, "empty"},
		{"garbage", []byte("hello world"), envelope.ErrMalformed, "three"},
		{"binary garbage", []byte{0xff, 0x00, 0x2e, 0x2e, 0x01}, envelope.ErrMalformed, ""},
		{"two parts", join(hseg, pseg), envelope.ErrMalformed, "three"},
		{"four parts", join(hseg, pseg, sseg, sseg), envelope.ErrMalformed, "got 4"},
		{"only dots", []byte(".."), envelope.ErrUnsigned, "empty signature"},
		{"empty signature", join(hseg, pseg, ""), envelope.ErrUnsigned, "empty signature"},
		{"bad base64 header", join("!!"+hseg, pseg, sseg), envelope.ErrMalformed, "protected header"},
		{"bad base64 payload", signSegments(t, p256, envelope.ES256, hseg, "*"+pseg), envelope.ErrMalformed, "payload"},
		{"bad base64 signature", join(hseg, pseg, sseg[:10]+"*"+sseg[11:]), envelope.ErrMalformed, "signature"},
		{"padded payload", signSegments(t, p256, envelope.ES256, hseg, base64.URLEncoding.EncodeToString([]byte(`{"a":1}`))), envelope.ErrMalformed, "payload"},
		{"padded signature", join(hseg, pseg, sseg+"=="), envelope.ErrMalformed, "signature"},
		{"standard alphabet", join(hseg, pseg, strings.NewReplacer("-", "+", "_", "/").Replace(sseg)+"+/"), envelope.ErrMalformed, "signature"},
		{"non-canonical last character", join(hseg, pseg, lastBits(sseg)), envelope.ErrMalformed, "signature"},
		{"newline in signature", join(hseg, pseg, sseg[:20]+"\n"+sseg[20:]), envelope.ErrMalformed, "signature"},
		{"CRLF at the end", append(bytes.Clone(good), '\r', '\n'), envelope.ErrMalformed, "signature"},
		{"space in header", join(hseg[:8]+" "+hseg[8:], pseg, sseg), envelope.ErrMalformed, "protected header"},
		{"header not JSON", signSegments(t, p256, envelope.ES256, b64([]byte("alg=ES256")), pseg), envelope.ErrMalformed, "protected header"},
		{"header is an array", signSegments(t, p256, envelope.ES256, b64([]byte(`["ES256"]`)), pseg), envelope.ErrMalformed, "protected header"},
		{"header with trailing data", signSegments(t, p256, envelope.ES256, b64(append(mustJSON(t, header(p256)), "{}"...)), pseg), envelope.ErrMalformed, "protected header"},
		{"unknown header field", withHeader(func(h map[string]any) { h["b64"] = false }), envelope.ErrMalformed, "b64"},
		{"header name in other case", withHeader(func(h map[string]any) { h["ALG"] = h["alg"]; delete(h, "alg") }), envelope.ErrMalformed, "ALG"},
		{"duplicate header name", signSegments(t, p256, envelope.ES256,
			b64([]byte(`{"alg":"ES256","alg":"ES256","x5c":`+string(mustJSON(t, x5c(p256.chain)))+`}`)), pseg), envelope.ErrMalformed, "alg"},
		{"crit present", withHeader(func(h map[string]any) { h["crit"] = []string{"exp"} }), envelope.ErrMalformed, "crit"},
		{"crit empty", withHeader(func(h map[string]any) { h["crit"] = []string{} }), envelope.ErrMalformed, "crit"},
		{"alg none", withHeader(func(h map[string]any) { h["alg"] = "none" }), envelope.ErrUnsigned, "none"},
		{"alg empty", withHeader(func(h map[string]any) { h["alg"] = "" }), envelope.ErrUnsigned, `""`},
		{"alg missing", withHeader(func(h map[string]any) { delete(h, "alg") }), envelope.ErrUnsigned, `""`},
		{"alg not a string", withHeader(func(h map[string]any) { h["alg"] = 256 }), envelope.ErrMalformed, "protected header"},
		{"alg HS256", withHeader(func(h map[string]any) { h["alg"] = "HS256" }), envelope.ErrMalformed, "HS256"},
		{"alg ES512", withHeader(func(h map[string]any) { h["alg"] = "ES512" }), envelope.ErrMalformed, "ES512"},
		{"alg in lower case", withHeader(func(h map[string]any) { h["alg"] = "es256" }), envelope.ErrMalformed, "es256"},
		{"ES256 header with an RSA key", func() []byte {
			h := header(rsaS)
			h["alg"] = envelope.ES256
			return signRaw(t, rsaS, h, payload)
		}(), envelope.ErrBadSignature, "ES256"},
		{"RS256 header with an ECDSA key", withHeader(func(h map[string]any) { h["alg"] = envelope.RS256 }), envelope.ErrBadSignature, "RS256"},
		{"PS256 header with an ECDSA key", withHeader(func(h map[string]any) { h["alg"] = envelope.PS256 }), envelope.ErrBadSignature, "PS256"},
		{"ES384 header with a P-256 key", withHeader(func(h map[string]any) { h["alg"] = envelope.ES384 }), envelope.ErrBadSignature, "ES384"},
		{"ES256 header with a P-384 key", func() []byte {
			h := header(p384)
			h["alg"] = envelope.ES256
			return signRaw(t, p384, h, payload)
		}(), envelope.ErrBadSignature, "ES256"},
		{"EdDSA header with an ECDSA key", withHeader(func(h map[string]any) { h["alg"] = envelope.EdDSA }), envelope.ErrBadSignature, "EdDSA"},
		{"no x5c", withHeader(func(h map[string]any) { delete(h, "x5c") }), envelope.ErrMalformed, "x5c"},
		{"empty x5c", withHeader(func(h map[string]any) { h["x5c"] = []string{} }), envelope.ErrMalformed, "x5c"},
		{"x5c not a list", withHeader(func(h map[string]any) { h["x5c"] = x5c(p256.chain)[0] }), envelope.ErrMalformed, "protected header"},
		{"too many x5c", withHeader(func(h map[string]any) { h["x5c"] = manyCerts }), envelope.ErrMalformed, "at most 8"},
		{"x5c bad base64", withHeader(func(h map[string]any) { h["x5c"] = []string{"***"} }), envelope.ErrMalformed, "x5c[0]"},
		{"x5c base64url", withHeader(func(h map[string]any) {
			h["x5c"] = []string{base64.RawURLEncoding.EncodeToString(p256.chain[0].Raw)}
		}), envelope.ErrMalformed, "x5c[0]"},
		{"x5c with newlines", withHeader(func(h map[string]any) {
			c := x5c(p256.chain)
			c[0] = c[0][:64] + "\n" + c[0][64:]
			h["x5c"] = c
		}), envelope.ErrMalformed, "x5c[0]"},
		{"x5c bad DER", withHeader(func(h map[string]any) {
			h["x5c"] = []string{x5c(p256.chain)[0], base64.StdEncoding.EncodeToString([]byte("not a certificate"))}
		}), envelope.ErrMalformed, "x5c[1]"},
		{"x5c trailing DER", withHeader(func(h map[string]any) {
			h["x5c"] = []string{base64.StdEncoding.EncodeToString(append(bytes.Clone(p256.chain[0].Raw), 0))}
		}), envelope.ErrMalformed, "x5c[0]"},
		{"x5c names another key", withHeader(func(h map[string]any) { h["x5c"] = x5c(p256.chain[1:]) }), envelope.ErrBadSignature, ""},
		{"leaf key too small", signRaw(t, small, header(small), payload), envelope.ErrMalformed, "1024"},
		{"leaf key on P-521", signRaw(t, p521, map[string]any{"alg": "ES512", "x5c": x5c(p521.chain)}, payload), envelope.ErrMalformed, "ES512"},
		{"payload changed", join(hseg, flip(), sseg), envelope.ErrBadSignature, ""},
		{"header changed", join(b64(mustJSON(t, header(ed))), pseg, sseg), envelope.ErrBadSignature, ""},
		{"signature of another envelope", func() []byte {
			other, err := envelope.Seal(validEnvelope(), p256.key, p256.chain)
			if err != nil {
				t.Fatal(err)
			}
			_, _, s2 := parts(t, other)
			return join(hseg, pseg, s2)
		}(), envelope.ErrBadSignature, ""},
		{"signature truncated", join(hseg, pseg, b64(unb64(t, sseg)[:63])), envelope.ErrBadSignature, "64"},
		{"signature extended", join(hseg, pseg, b64(append(unb64(t, sseg), 0))), envelope.ErrBadSignature, "64"},
		{"signature zero", join(hseg, pseg, b64(make([]byte, 64))), envelope.ErrBadSignature, ""},
		{"RSA signature truncated", truncSig(t, e, rsaS), envelope.ErrBadSignature, ""},
		{"Ed25519 signature truncated", truncSig(t, e, ed), envelope.ErrBadSignature, ""},
		{"P-384 signature truncated", truncSig(t, e, p384), envelope.ErrBadSignature, ""},
		{"bare JSON envelope", payload, envelope.ErrUnsigned, "bare JSON"},
		{"bare JSON with spaces", append([]byte("  \n"), payload...), envelope.ErrUnsigned, "bare JSON"},
		{"bare JSON object", []byte(`{"id":"x"}`), envelope.ErrUnsigned, "bare JSON"},
		{"JWS JSON serialisation", jsonSerialised, envelope.ErrMalformed, "compact"},
		{"oversize", bytes.Repeat([]byte("A"), envelope.MaxWireSize+1), envelope.ErrTooLarge, "at most"},
		{"oversize valid prefix", append(bytes.Clone(good), bytes.Repeat([]byte("A"), envelope.MaxWireSize)...), envelope.ErrTooLarge, ""},
		{"payload with unknown field", withPayload(`{"id":"x","from":"a","deliver_to_all":true}`), envelope.ErrMalformed, "deliver_to_all"},
		{"payload with trailing object", withPayload(string(payload) + `{}`), envelope.ErrMalformed, "trailing"},
		{"payload with trailing brace", withPayload(string(payload) + `}`), envelope.ErrMalformed, "trailing"},
		{"payload with trailing bracket", withPayload(string(payload) + `]`), envelope.ErrMalformed, "trailing"},
		{"payload with trailing garbage", withPayload(string(payload) + `x`), envelope.ErrMalformed, "trailing"},
		{"payload with wrong type", withPayload(`{"to":"000.00.00.H41"}`), envelope.ErrMalformed, "to"},
		{"payload with wrong time", withPayload(`{"created":"yesterday"}`), envelope.ErrMalformed, "payload"},
		{"payload null", withPayload(`null`), envelope.ErrMalformed, "payload"},
		{"payload array", withPayload(`[]`), envelope.ErrMalformed, "payload"},
		{"payload string", withPayload(`"x"`), envelope.ErrMalformed, "payload"},
		{"payload empty", withPayload(``), envelope.ErrMalformed, "payload"},
		{"payload truncated JSON", withPayload(string(payload[:len(payload)-1])), envelope.ErrMalformed, "payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := envelope.Open(tt.in)
			if err == nil {
				t.Fatalf("Open = %+v, want an error", s.Envelope)
			}
			if s != nil {
				t.Errorf("Open returned a result with error %v", err)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Open = %v, want %v", err, tt.want)
			}
			for _, other := range []error{envelope.ErrMalformed, envelope.ErrUnsigned, envelope.ErrBadSignature, envelope.ErrTooLarge} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("Open = %v, matches %v as well as %v", err, other, tt.want)
				}
			}
			if !strings.Contains(err.Error(), tt.fault) {
				t.Errorf("Open = %q, want it to mention %q", err, tt.fault)
			}
		})
	}
}

// TestOpenResultIsolated checks that a caller changing what Open returned
// cannot change what the next Open of the same sender's chain returns.
func TestOpenResultIsolated(t *testing.T) {
	s := signerFor(t, "P-256")
	raw, err := envelope.Seal(validEnvelope(), s.key, s.chain)
	if err != nil {
		t.Fatal(err)
	}
	first, err := envelope.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	first.Header.X5c[0] = "changed"
	first.Header.Alg = "changed"
	first.Chain[0] = nil
	second, err := envelope.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	if second.Header.X5c[0] != x5c(s.chain)[0] || second.Header.Alg != envelope.ES256 || second.Chain[0] == nil || !second.Chain[0].Equal(s.chain[0]) {
		t.Errorf("second Open saw the first caller's changes: %+v", second.Header)
	}
}

func TestPeek(t *testing.T) {
	s := signerFor(t, "P-256")
	e := validEnvelope()
	raw, err := envelope.Seal(e, s.key, s.chain)
	if err != nil {
		t.Fatal(err)
	}
	hseg, pseg, sseg := parts(t, raw)
	// Peek does not verify: it reads the envelope of a message whose
	// signature or chain is wrong, to name its sender in the refusal.
	for name, in := range map[string][]byte{
		"valid":           raw,
		"bad signature":   []byte(hseg + "." + pseg + "." + sseg[:10]),
		"empty signature": []byte(hseg + "." + pseg + "."),
		"garbage header":  []byte("xx." + pseg + ".yy"),
	} {
		got, err := envelope.Peek(in)
		if err != nil {
			t.Errorf("Peek(%s) = %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("Peek(%s) = %+v, want %+v", name, got, e)
		}
	}
	for name, tt := range map[string]struct {
		in   []byte
		want error
	}{
		"empty":        {nil, envelope.ErrMalformed},
		"bare JSON":    {mustJSON(t, e), envelope.ErrMalformed},
		"bad payload":  {[]byte(hseg + ".!!." + sseg), envelope.ErrMalformed},
		"four parts":   {[]byte(hseg + "." + pseg + "." + sseg + "." + sseg), envelope.ErrMalformed},
		"oversize":     {bytes.Repeat([]byte("."), envelope.MaxWireSize+1), envelope.ErrTooLarge},
		"JSON garbage": {[]byte(hseg + "." + b64([]byte("{")) + "." + sseg), envelope.ErrMalformed},
	} {
		if got, err := envelope.Peek(tt.in); !errors.Is(err, tt.want) {
			t.Errorf("Peek(%s) = %v, %v; want %v", name, got, err, tt.want)
		}
	}
}

func TestDecodePayload(t *testing.T) {
	e := validEnvelope()
	good := mustJSON(t, e)
	got, err := envelope.DecodePayload(good)
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("DecodePayload = %+v, %v", got, err)
	}
	// Whitespace around the object is not data.
	if _, err := envelope.DecodePayload(append(append([]byte(" \n"), good...), " \r\n\t"...)); err != nil {
		t.Errorf("DecodePayload with surrounding whitespace = %v", err)
	}
	for name, in := range map[string]string{
		"empty":          ``,
		"null":           `null`,
		"number":         `1`,
		"array":          `[{}]`,
		"unknown field":  `{"priority_lane":1}`,
		"nested unknown": `{"document":{"secret":1}}`,
		"wrong type":     `{"attachments":{}}`,
		"size as string": `{"attachments":[{"size":"1"}]}`,
		"trailing data":  string(good) + `{}`,
		"trailing brace": string(good) + `}`,
		"trailing ]":     string(good) + `]`,
		"trailing comma": string(good) + `,`,
		"two values":     `{} {}`,
		"truncated":      string(good[:len(good)/2]),
	} {
		if got, err := envelope.DecodePayload([]byte(in)); !errors.Is(err, envelope.ErrMalformed) {
			t.Errorf("DecodePayload(%s) = %+v, %v; want ErrMalformed", name, got, err)
		}
	}
}

func TestDigestAndFingerprint(t *testing.T) {
	// The SHA-256 of the empty string, a fixed point for receipts.
	if got := envelope.Digest(nil); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("Digest(nil) = %s", got)
	}
	s := signerFor(t, "P-256")
	if envelope.Fingerprint(s.chain[0]) == envelope.Fingerprint(s.chain[1]) || len(envelope.Fingerprint(s.chain[0])) != 64 {
		t.Error("Fingerprint does not tell certificates apart")
	}
}

// smallRSASigner returns a signer with a 1024-bit RSA leaf, which Open
// must refuse however valid its signature is.
func smallRSASigner(t *testing.T) *signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Skipf("cannot make a 1024-bit RSA key here: %v", err)
	}
	root, rootKey := newRoot()
	return &signer{name: "RSA-1024", alg: envelope.RS256, key: k, chain: []*x509.Certificate{newLeaf(root, rootKey, k.Public(), "small"), root}}
}

func p521Signer(t *testing.T) *signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	root, rootKey := newRoot()
	return &signer{name: "P-521", alg: "ES512", key: k, chain: []*x509.Certificate{newLeaf(root, rootKey, k.Public(), "p521"), root}}
}

// truncSig seals e with s and drops the last byte of the signature, keeping
// the encoding valid so that only the signature check can refuse it.
func truncSig(t *testing.T, e *envelope.Envelope, s *signer) []byte {
	t.Helper()
	raw, err := envelope.Seal(e, s.key, s.chain)
	if err != nil {
		t.Fatal(err)
	}
	h, p, sig := parts(t, raw)
	b := unb64(t, sig)
	return []byte(h + "." + p + "." + b64(b[:len(b)-1]))
}
