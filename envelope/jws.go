package envelope

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// MaxWireSize bounds a signed envelope. NATS carries at most 1 MiB per
// message including headers; the rest is headroom.
const MaxWireSize = 960 << 10

// ContentType is the JWS "cty" of a docaxis envelope.
const ContentType = "application/vnd.docaxis.envelope+json"

// Supported JWS algorithms.
const (
	ES256 = "ES256"
	ES384 = "ES384"
	EdDSA = "EdDSA"
	RS256 = "RS256"
	PS256 = "PS256"
)

var (
	// ErrMalformed is matched by every error about bytes that are not a
	// well-formed signed envelope.
	ErrMalformed = errors.New("malformed signed envelope")
	// ErrTooLarge is returned for input over MaxWireSize.
	ErrTooLarge = errors.New("signed envelope too large")
	// ErrBadSignature is returned when the signature does not match the bytes.
	ErrBadSignature = errors.New("signature does not match the signed bytes")
	// ErrUnsigned is returned for input that carries no signature at all.
	ErrUnsigned = errors.New("envelope is not signed")
)

// Header is the JWS protected header.
type Header struct {
	Alg  string   `json:"alg"`
	Typ  string   `json:"typ,omitempty"`
	Cty  string   `json:"cty,omitempty"`
	Kid  string   `json:"kid,omitempty"`
	X5c  []string `json:"x5c"`
	Crit []string `json:"crit,omitempty"`
}

// Signed is a decoded signed envelope whose signature matched the leaf
// certificate of its x5c chain. Trust in that chain is not yet established:
// that is the job of signing.Verifier.
type Signed struct {
	Raw       []byte // the exact bytes that travelled
	Header    Header
	Payload   []byte
	Envelope  *Envelope
	Chain     []*x509.Certificate // leaf first
	Signature []byte
}

// Digest is the SHA-256 (hex) of the exact signed bytes; receipts carry it.
func (s *Signed) Digest() string { return Digest(s.Raw) }

// Digest returns the SHA-256 (hex) of raw.
func Digest(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// AlgorithmFor returns the JWS algorithm used for key.
func AlgorithmFor(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return ES256, nil
		case 384:
			return ES384, nil
		}
		return "", fmt.Errorf("ECDSA curve %s not supported (P-256, P-384)", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return EdDSA, nil
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("RSA key of %d bits too short (at least 2048)", k.N.BitLen())
		}
		return RS256, nil
	}
	return "", fmt.Errorf("key type %T not supported", pub)
}

// Seal encodes e and signs the bytes with key, embedding chain (leaf first)
// in x5c. It validates e first.
func Seal(e *Envelope, key crypto.Signer, chain []*x509.Certificate, opts ...ValidateOption) ([]byte, error) {
	if err := e.Validate(opts...); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode envelope %s: %w", e.ID, err)
	}
	// What no recipient would accept (case-variant keys in status details)
	// is refused here, where the sender can still change it.
	if err := CheckJSONKeys(payload, ExactFields(Envelope{})); err != nil {
		return nil, &ValidationError{Field: "payload", Reason: err.Error(), Err: err}
	}
	return Sign(payload, key, chain)
}

// headerCache keeps the encoded protected header per signing chain: it is
// the same for every envelope a key signs. The key covers the algorithm and
// the whole chain (not only the leaf: the same leaf may travel with another
// intermediate), and the cache is bounded.
var headerCache = newLRU(1024) // sha256(alg, chain DER...) -> []byte

// Sign produces a JWS compact serialisation of payload.
func Sign(payload []byte, key crypto.Signer, chain []*x509.Certificate) ([]byte, error) {
	if len(chain) == 0 {
		return nil, errors.New("sign: no certificate chain")
	}
	pub := key.Public()
	alg, err := AlgorithmFor(pub)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	// A signature no receiver could verify is a bug to report here, not at
	// every recipient.
	if k, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(chain[0].PublicKey) {
		return nil, fmt.Errorf("sign: the key does not match the leaf certificate %q", chain[0].Subject.CommonName)
	}
	hk := sha256.New()
	hk.Write([]byte(alg)) // all algorithm names have the same length
	for _, c := range chain {
		hk.Write(c.Raw) // DER is self-delimiting: the concatenation is unambiguous
	}
	ck := string(hk.Sum(nil))
	hdr, ok := headerCache.get(ck)
	if !ok {
		h := Header{Alg: alg, Typ: "JOSE", Cty: ContentType, Kid: Fingerprint(chain[0])}
		for _, c := range chain {
			h.X5c = append(h.X5c, base64.StdEncoding.EncodeToString(c.Raw))
		}
		hj, err := json.Marshal(h)
		if err != nil {
			return nil, fmt.Errorf("sign: encode header: %w", err)
		}
		hdr = []byte(base64.RawURLEncoding.EncodeToString(hj))
		headerCache.put(ck, hdr)
	}
	hb := hdr.([]byte)
	n := len(hb) + 1 + base64.RawURLEncoding.EncodedLen(len(payload))
	if n > MaxWireSize {
		// Too large already without the signature: do not pay for one.
		return nil, fmt.Errorf("%w: over %d bytes, at most %d", ErrTooLarge, n, MaxWireSize)
	}
	out := make([]byte, n, n+1+base64.RawURLEncoding.EncodedLen(512))
	copy(out, hb)
	out[len(hb)] = '.'
	base64.RawURLEncoding.Encode(out[len(hb)+1:], payload)
	sig, err := signBytes(alg, key, out)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	out = append(out, '.')
	out = base64.RawURLEncoding.AppendEncode(out, sig)
	if len(out) > MaxWireSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(out), MaxWireSize)
	}
	return out, nil
}

// Fingerprint is the hex SHA-256 of a certificate's DER bytes.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

func hashFor(alg string, data []byte) (crypto.Hash, []byte) {
	switch alg {
	case ES384:
		s := sha512.Sum384(data)
		return crypto.SHA384, s[:]
	default:
		s := sha256.Sum256(data)
		return crypto.SHA256, s[:]
	}
}

func signBytes(alg string, key crypto.Signer, input []byte) ([]byte, error) {
	switch alg {
	case EdDSA:
		return key.Sign(rand.Reader, input, crypto.Hash(0))
	case RS256:
		h, d := hashFor(alg, input)
		return key.Sign(rand.Reader, d, h)
	case PS256:
		h, d := hashFor(alg, input)
		return key.Sign(rand.Reader, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h})
	case ES256, ES384:
		h, d := hashFor(alg, input)
		der, err := key.Sign(rand.Reader, d, h)
		if err != nil {
			return nil, err
		}
		// JWS wants r||s of fixed size, crypto.Signer gives ASN.1.
		var sig struct{ R, S *big.Int }
		if _, err := asn1Unmarshal(der, &sig); err != nil {
			return nil, fmt.Errorf("decode ECDSA signature: %w", err)
		}
		size := 32
		if alg == ES384 {
			size = 48
		}
		out := make([]byte, 2*size)
		sig.R.FillBytes(out[:size])
		sig.S.FillBytes(out[size:])
		return out, nil
	}
	return nil, fmt.Errorf("algorithm %s not supported", alg)
}

func verifyBytes(alg string, pub crypto.PublicKey, input, sig []byte) error {
	want, err := AlgorithmFor(pub)
	if err != nil {
		return fmt.Errorf("%w: x5c[0]: %v", ErrMalformed, err)
	}
	// An RSA key may sign RS256 or PS256; other keys have exactly one alg.
	if alg != want && !(alg == PS256 && want == RS256) {
		return fmt.Errorf("%w: alg %s does not fit the certificate's %T key", ErrBadSignature, alg, pub)
	}
	switch alg {
	case EdDSA:
		if !ed25519.Verify(pub.(ed25519.PublicKey), input, sig) {
			return ErrBadSignature
		}
	case RS256:
		_, d := hashFor(alg, input)
		if rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, d, sig) != nil {
			return ErrBadSignature
		}
	case PS256:
		_, d := hashFor(alg, input)
		if rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) != nil {
			return ErrBadSignature
		}
	case ES256, ES384:
		k := pub.(*ecdsa.PublicKey)
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return fmt.Errorf("%w: ECDSA signature is %d bytes, want %d", ErrBadSignature, len(sig), 2*size)
		}
		_, d := hashFor(alg, input)
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, d, r, s) {
			return ErrBadSignature
		}
	default:
		return fmt.Errorf("%w: algorithm %q not supported", ErrMalformed, alg)
	}
	return nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// algorithms lists the JWS algorithms Open accepts.
var algorithms = []string{ES256, ES384, EdDSA, RS256, PS256}

// MaxChain bounds the certificates in x5c.
const MaxChain = 8

// headerParams are the protected header parameters Open understands. Any
// other one, "crit" included, is refused: a parameter the receiver ignores
// could change the meaning of the signature for another tool.
var headerParams = map[string]bool{"alg": true, "typ": true, "cty": true, "kid": true, "x5c": true}

// parsedHeader is a decoded protected header with its parsed chain.
type parsedHeader struct {
	hdr   Header
	chain []*x509.Certificate
}

// parsedHeaders caches parsedHeader by header segment. A sender's header is
// the same for every envelope it signs, and decoding it (base64, JSON,
// X.509) is a fair share of an Open. Only headers whose signature verified
// are kept, each up to maxCachedHeader bytes, in a bounded cache: a flood of
// made-up chains cannot grow memory without limit.
var parsedHeaders = newLRU(4096) // sha256(header segment) -> *parsedHeader

const maxCachedHeader = 16 << 10

// OpenJWS decodes raw strictly and checks its signature against the leaf
// certificate in x5c, whatever the payload is (Envelope stays nil): the
// one JWS layer for every signed statement of the bus. It does not
// establish trust in the chain.
func OpenJWS(raw []byte) (*Signed, error) {
	if len(raw) > MaxWireSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(raw), MaxWireSize)
	}
	if len(raw) == 0 {
		return nil, malformed("empty input")
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' && json.Valid(t) {
		var js struct {
			Payload    json.RawMessage `json:"payload"`
			Signature  json.RawMessage `json:"signature"`
			Signatures json.RawMessage `json:"signatures"`
		}
		if json.Unmarshal(t, &js) == nil && js.Payload != nil && (js.Signature != nil || js.Signatures != nil) {
			return nil, malformed("got the JWS JSON serialisation, want the compact one")
		}
		return nil, fmt.Errorf("%w: got bare JSON, want a JWS compact serialisation", ErrUnsigned)
	}
	first := bytes.IndexByte(raw, '.')
	last := bytes.LastIndexByte(raw, '.')
	if first < 0 || first == last {
		return nil, malformed("want three base64url parts separated by '.'")
	}
	if bytes.Count(raw, []byte{'.'}) != 2 {
		return nil, malformed("want exactly three parts, got %d", bytes.Count(raw, []byte{'.'})+1)
	}
	hseg, pseg, sseg := raw[:first], raw[first+1:last], raw[last+1:]
	if len(sseg) == 0 {
		return nil, fmt.Errorf("%w: empty signature part", ErrUnsigned)
	}
	sum := sha256.Sum256(hseg)
	key := string(sum[:])
	var ph *parsedHeader
	cached := false
	if v, ok := parsedHeaders.get(key); ok {
		ph, cached = v.(*parsedHeader), true
	} else {
		var err error
		if ph, err = parseHeader(hseg); err != nil {
			return nil, err
		}
	}
	sig, err := decodeSegment(sseg)
	if err != nil {
		return nil, malformed("signature: %v", err)
	}
	if err := verifyBytes(ph.hdr.Alg, ph.chain[0].PublicKey, raw[:last], sig); err != nil {
		return nil, err
	}
	if !cached && len(hseg) <= maxCachedHeader {
		parsedHeaders.put(key, ph)
	}
	payload, err := decodeSegment(pseg)
	if err != nil {
		return nil, malformed("payload: %v", err)
	}
	s := &Signed{Raw: raw, Header: ph.hdr, Payload: payload, Signature: sig}
	// The cached header is shared: hand out copies of its slices.
	s.Header.X5c = append([]string(nil), ph.hdr.X5c...)
	s.Chain = append([]*x509.Certificate(nil), ph.chain...)
	return s, nil
}

// Open decodes raw strictly, checks its signature against the leaf
// certificate in x5c and decodes the envelope from the signed payload. It
// does not establish trust in the chain (see signing.Verifier).
func Open(raw []byte) (*Signed, error) {
	s, err := OpenJWS(raw)
	if err != nil {
		return nil, err
	}
	if s.Envelope, err = DecodePayload(s.Payload); err != nil {
		return nil, err
	}
	return s, nil
}

// parseHeader decodes and checks a protected header segment and its chain.
func parseHeader(hseg []byte) (*parsedHeader, error) {
	hj, err := decodeSegment(hseg)
	if err != nil {
		return nil, malformed("protected header: %v", err)
	}
	if err := checkHeaderParams(hj); err != nil {
		return nil, malformed("protected header: %v", err)
	}
	ph := &parsedHeader{}
	if err := json.Unmarshal(hj, &ph.hdr); err != nil {
		return nil, malformed("protected header: %v", err)
	}
	h := &ph.hdr
	if h.Alg == "none" || h.Alg == "" {
		return nil, fmt.Errorf("%w: alg %q", ErrUnsigned, h.Alg)
	}
	supported := false
	for _, a := range algorithms {
		supported = supported || h.Alg == a
	}
	if !supported {
		return nil, malformed("protected header: algorithm %q not supported (want one of %v)", h.Alg, algorithms)
	}
	if len(h.X5c) == 0 {
		return nil, malformed("protected header: no x5c certificate chain")
	}
	if len(h.X5c) > MaxChain {
		return nil, malformed("protected header: x5c has %d certificates, at most %d", len(h.X5c), MaxChain)
	}
	if ph.chain, err = parseChain(h.X5c); err != nil {
		return nil, err
	}
	return ph, nil
}

// checkHeaderParams refuses parameters other than headerParams, and
// duplicates (CheckJSONKeys): encoding/json would match names
// case-insensitively and keep the last of two, where another JOSE tool may
// read the header otherwise.
func checkHeaderParams(hj []byte) error {
	if t := bytes.TrimLeft(hj, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return errors.New("not a JSON object")
	}
	var ke *JSONKeyError
	if err := CheckJSONKeys(hj, ExactFields(Header{})); errors.As(err, &ke) && ke.Path == "" && ke.Key != "" {
		switch {
		case errors.Is(err, ErrDuplicateKey):
			return fmt.Errorf("duplicate parameter %q (%s)", ke.Key, ke.Msg)
		default:
			return fmt.Errorf("unknown parameter %q", ke.Key)
		}
	} else if err != nil {
		return err
	}
	var params map[string]json.RawMessage
	if err := json.Unmarshal(hj, &params); err != nil {
		return err
	}
	for name := range params {
		switch {
		case name == "crit":
			return errors.New(`critical parameters ("crit") not supported`)
		case !headerParams[name]:
			return fmt.Errorf("unknown parameter %q", name)
		}
	}
	return nil
}

// DecodePayload decodes an envelope's JSON strictly: anything but one JSON
// object, unknown fields, trailing data and wrong types are errors, and so
// is whatever another JSON reader could read otherwise (CheckJSONKeys with
// ExactFields: duplicate keys, keys differing only in case, a field's name
// in another case, invalid UTF-8).
func DecodePayload(p []byte) (*Envelope, error) {
	return decodePayload(p, true)
}

// decodePayload is DecodePayload; without strictKeys it leaves the keys to
// encoding/json (Peek: naming the sender of a refused message).
func decodePayload(p []byte, strictKeys bool) (*Envelope, error) {
	if t := bytes.TrimLeft(p, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, malformed("payload: want a JSON object")
	}
	if strictKeys {
		if err := CheckJSONKeys(p, ExactFields(Envelope{})); err != nil {
			return nil, fmt.Errorf("%w: payload: %w", ErrMalformed, err)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	var e Envelope
	if err := dec.Decode(&e); err != nil {
		return nil, malformed("payload: %v", err)
	}
	// Decoder.More would let a stray '}' or ']' through.
	if rest := bytes.TrimLeft(p[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, malformed("payload: trailing data after the envelope")
	}
	return &e, nil
}

func decodeSegment(seg []byte) ([]byte, error) {
	// The decoder skips line breaks even in strict mode; in a JWS they would
	// make distinct byte strings carry the same signature.
	if i := bytes.IndexAny(seg, "\r\n"); i >= 0 {
		return nil, fmt.Errorf("line break at byte %d", i)
	}
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(seg)))
	n, err := base64.RawURLEncoding.Strict().Decode(out, seg)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

func parseChain(x5c []string) ([]*x509.Certificate, error) {
	chain := make([]*x509.Certificate, 0, len(x5c))
	for i, b := range x5c {
		if strings.ContainsAny(b, "\r\n") {
			return nil, malformed("x5c[%d]: line breaks not allowed", i)
		}
		der, err := base64.StdEncoding.Strict().DecodeString(b)
		if err != nil {
			return nil, malformed("x5c[%d]: %v", i, err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, malformed("x5c[%d]: %v", i, err)
		}
		chain = append(chain, c)
	}
	return chain, nil
}

func asn1Unmarshal(der []byte, v any) ([]byte, error) { return asn1.Unmarshal(der, v) }

// Peek decodes the envelope inside raw WITHOUT checking its signature, nor
// its JSON keys (see DecodePayload). It is for routing and diagnostics only (naming the sender of a bad message,
// recording that a copy was stored); never act on its content as trusted.
func Peek(raw []byte) (*Envelope, error) {
	if len(raw) > MaxWireSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(raw), MaxWireSize)
	}
	first := bytes.IndexByte(raw, '.')
	last := bytes.LastIndexByte(raw, '.')
	if first < 0 || first == last {
		return nil, malformed("want three base64url parts separated by '.'")
	}
	p, err := decodeSegment(raw[first+1 : last])
	if err != nil {
		return nil, malformed("payload: %v", err)
	}
	// Keys as encoding/json reads them, duplicates or not: enough to name
	// whom to tell that the envelope is refused for them.
	return decodePayload(p, false)
}
