package jws

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
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
)

// Supported algorithms. The key decides: ECDSA P-256 and P-384 sign ES256
// and ES384, Ed25519 EdDSA, RSA (2048 bits or more) RS256; Open also
// takes PS256 from an RSA key.
const (
	ES256 = "ES256"
	ES384 = "ES384"
	EdDSA = "EdDSA"
	RS256 = "RS256"
	PS256 = "PS256"
)

// algorithms lists the algorithms Open accepts.
var algorithms = []string{ES256, ES384, EdDSA, RS256, PS256}

// MaxChain bounds the certificates in x5c.
const MaxChain = 8

// Header is the protected header.
type Header struct {
	Alg  string   `json:"alg"`
	Typ  string   `json:"typ,omitempty"`
	Cty  string   `json:"cty,omitempty"`
	Kid  string   `json:"kid,omitempty"`
	X5c  []string `json:"x5c"`
	Crit []string `json:"crit,omitempty"`
}

// Signed is an opened JWS whose signature matched the leaf certificate of
// its x5c chain. Trust in that chain is not established here.
type Signed struct {
	Raw       []byte // the exact bytes that travelled
	Header    Header
	Payload   []byte
	Chain     []*x509.Certificate // leaf first
	Signature []byte
}

// AlgorithmFor returns the algorithm a key signs with.
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

// Fingerprint is the hex SHA-256 of a certificate's DER bytes (the "kid"
// KeyID puts in the header).
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// headerCache keeps the encoded protected header per signing chain and
// options: it is the same for every statement a key signs. The key covers
// the algorithm, the header's other parameters and the whole chain (not
// only the leaf: the same leaf may travel with another intermediate), and
// the cache is bounded.
var headerCache = newLRU(1024) // sha256(alg, typ, cty, kid, chain DER...) -> []byte

// Sign signs payload with key as a compact serialisation whose protected
// header carries the algorithm of key, "typ" JOSE, the content type and
// key id the options ask for, and chain (leaf first) in x5c. The key must
// match the leaf.
func Sign(payload []byte, key crypto.Signer, chain []*x509.Certificate, opts ...SignOption) ([]byte, error) {
	c := signOptions(opts)
	if len(chain) == 0 {
		return nil, errors.New("sign: no certificate chain")
	}
	pub := key.Public()
	alg, err := AlgorithmFor(pub)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if !allowed(alg, c.algs) {
		return nil, fmt.Errorf("sign: key is %T (%s), want %s", pub, alg, strings.Join(c.algs, ", "))
	}
	// A signature no receiver could verify is a bug to report here, not at
	// every recipient.
	if k, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(chain[0].PublicKey) {
		return nil, fmt.Errorf("sign: the key does not match the leaf certificate %q", chain[0].Subject.CommonName)
	}
	hb, err := encodedHeader(alg, c, chain)
	if err != nil {
		return nil, err
	}
	n := len(hb) + 1 + base64.RawURLEncoding.EncodedLen(len(payload))
	if n > c.max {
		// Too large already without the signature: do not pay for one.
		return nil, &Error{Err: ErrTooLarge, Detail: fmt.Sprintf("over %d bytes, at most %d", n, c.max)}
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
	if len(out) > c.max {
		return nil, &Error{Err: ErrTooLarge, Detail: fmt.Sprintf("%d bytes, at most %d", len(out), c.max)}
	}
	return out, nil
}

// encodedHeader returns the base64url protected header, from the cache
// when this chain signed with these options before.
func encodedHeader(alg string, c signConfig, chain []*x509.Certificate) ([]byte, error) {
	// One buffer for the parameters, length-prefixed so that no two
	// headers share a key: every slice handed to the hash escapes.
	pre := make([]byte, 0, 16+len(alg)+len(c.typ)+len(c.cty))
	for _, s := range []string{alg, c.typ, c.cty} {
		pre = binary.AppendUvarint(pre, uint64(len(s)))
		pre = append(pre, s...)
	}
	if c.kid {
		pre = append(pre, 1)
	} else {
		pre = append(pre, 0)
	}
	hk := sha256.New()
	hk.Write(pre)
	for _, crt := range chain {
		hk.Write(crt.Raw) // DER is self-delimiting: the concatenation is unambiguous
	}
	var ck [32]byte
	hk.Sum(ck[:0])
	if hdr, ok := headerCache.get(ck); ok {
		return hdr.([]byte), nil
	}
	h := Header{Alg: alg, Typ: c.typ, Cty: c.cty}
	if c.kid {
		h.Kid = Fingerprint(chain[0])
	}
	for _, crt := range chain {
		h.X5c = append(h.X5c, base64.StdEncoding.EncodeToString(crt.Raw))
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("sign: encode header: %w", err)
	}
	hdr := []byte(base64.RawURLEncoding.EncodeToString(hj))
	headerCache.put(ck, hdr)
	return hdr, nil
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
		if _, err := asn1.Unmarshal(der, &sig); err != nil {
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

func verifyBytes(alg string, pub crypto.PublicKey, input, sig []byte, fast *p256Table) error {
	want, err := AlgorithmFor(pub)
	if err != nil {
		return malformed("x5c[0]: %v", err)
	}
	// An RSA key may sign RS256 or PS256; other keys have exactly one alg.
	if alg != want && !(alg == PS256 && want == RS256) {
		return &Error{Err: ErrBadSignature, Detail: fmt.Sprintf("alg %s does not fit the certificate's %T key", alg, pub)}
	}
	// Made on failure only: an error built up front would cost every Open
	// an allocation.
	bad := func() error { return &Error{Err: ErrBadSignature} }
	switch alg {
	case EdDSA:
		if !ed25519.Verify(pub.(ed25519.PublicKey), input, sig) {
			return bad()
		}
	case RS256:
		_, d := hashFor(alg, input)
		if rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, d, sig) != nil {
			return bad()
		}
	case PS256:
		_, d := hashFor(alg, input)
		if rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, d, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) != nil {
			return bad()
		}
	case ES256, ES384:
		k := pub.(*ecdsa.PublicKey)
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return &Error{Err: ErrBadSignature, Detail: fmt.Sprintf("ECDSA signature is %d bytes, want %d", len(sig), 2*size)}
		}
		_, d := hashFor(alg, input)
		if fast != nil && alg == ES256 {
			if !fast.verify(d, sig) {
				return bad()
			}
			break
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, d, r, s) {
			return bad()
		}
	default:
		return malformed("algorithm %q not supported", alg)
	}
	return nil
}

func malformed(format string, args ...any) error {
	return &Error{Err: ErrMalformed, Detail: fmt.Sprintf(format, args...)}
}

// headerParams are the protected header parameters Open understands. Any
// other one, "crit" included, is refused: a parameter the receiver ignores
// could change the meaning of the signature for another tool.
var headerParams = map[string]bool{"alg": true, "typ": true, "cty": true, "kid": true, "x5c": true}

// parsedHeader is a decoded protected header with its parsed chain.
type parsedHeader struct {
	hdr   Header
	chain []*x509.Certificate

	// For an ES256 header: its key's name in p256Tables, and how often
	// the cached header was verified (p256TableAfter).
	isP256 bool
	p256ID [32]byte
	uses   atomic.Uint64
}

// table returns the P-256 table to verify the cached header's signatures
// with, once it has been used often enough; nil otherwise.
func (ph *parsedHeader) table() *p256Table {
	if !ph.isP256 || ph.uses.Add(1) < p256TableAfter {
		return nil
	}
	return p256TableFor(ph.p256ID, ph.chain[0].PublicKey.(*ecdsa.PublicKey))
}

// parsedHeaders caches parsedHeader by header segment. A signer's header
// is the same for every statement it signs, and decoding it (base64, JSON,
// X.509) is a fair share of an Open. Only headers whose signature verified
// are kept, each up to maxCachedHeader bytes, in a bounded cache: a flood
// of made-up chains cannot grow memory without limit.
var parsedHeaders = newLRU(4096) // sha256(header segment) -> *parsedHeader

const maxCachedHeader = 16 << 10

// Open decodes raw strictly and checks its signature against the leaf
// certificate in x5c: three base64url parts without padding or line
// breaks, a protected header of known parameters only (no "crit", no key
// twice or in two cases), a supported algorithm that fits the leaf's key,
// one to MaxChain certificates. It does not establish trust in the chain,
// nor read the payload (DecodeJSON does).
func Open(raw []byte, opts ...OpenOption) (*Signed, error) {
	c := openOptions(opts)
	if len(raw) > c.max {
		return nil, &Error{Err: ErrTooLarge, Detail: fmt.Sprintf("%d bytes, at most %d", len(raw), c.max)}
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
		return nil, &Error{Err: ErrUnsigned, Detail: "got bare JSON, want a JWS compact serialisation"}
	}
	first := bytes.IndexByte(raw, '.')
	last := bytes.LastIndexByte(raw, '.')
	if first < 0 || first == last {
		return nil, malformed("want three base64url parts separated by '.'")
	}
	if n := bytes.Count(raw, []byte{'.'}); n != 2 {
		return nil, malformed("want exactly three parts, got %d", n+1)
	}
	hseg, pseg, sseg := raw[:first], raw[first+1:last], raw[last+1:]
	if len(sseg) == 0 {
		return nil, &Error{Err: ErrUnsigned, Detail: "empty signature part"}
	}
	key := sha256.Sum256(hseg)
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
	// What the caller asks of the header, checked on every Open: the cache
	// is shared by callers asking different things.
	if !allowed(ph.hdr.Alg, c.algs) {
		return nil, malformed("protected header: algorithm %q, want %s", ph.hdr.Alg, strings.Join(c.algs, ", "))
	}
	if c.cty != "" && ph.hdr.Cty != c.cty {
		return nil, malformed("protected header: cty %q, want %s", ph.hdr.Cty, c.cty)
	}
	sig, err := decodeSegment(sseg)
	if err != nil {
		return nil, malformed("signature: %v", err)
	}
	var fast *p256Table
	if cached {
		fast = ph.table()
	}
	if err := verifyBytes(ph.hdr.Alg, ph.chain[0].PublicKey, raw[:last], sig, fast); err != nil {
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
		return nil, &Error{Err: ErrUnsigned, Detail: fmt.Sprintf("alg %q", h.Alg)}
	}
	if !allowed(h.Alg, algorithms) {
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
	if h.Alg == ES256 {
		ph.p256ID, ph.isP256 = p256KeyID(ph.chain[0].PublicKey)
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

// Payload returns the payload of the compact JWS raw without checking its
// signature: only for a statement its reader signed itself and keeps where
// no one else writes (the audit chain reading back its own checkpoints),
// never for what another party sent (Open).
func Payload(raw []byte) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > MaxSize {
		return nil, &Error{Err: ErrTooLarge, Detail: fmt.Sprintf("%d bytes, at most %d", len(raw), MaxSize)}
	}
	if bytes.Count(raw, []byte{'.'}) != 2 {
		return nil, malformed("want three base64url parts separated by '.'")
	}
	first, last := bytes.IndexByte(raw, '.'), bytes.LastIndexByte(raw, '.')
	p, err := decodeSegment(raw[first+1 : last])
	if err != nil {
		return nil, malformed("payload: %v", err)
	}
	return p, nil
}

// DecodeSegment decodes one base64url part of a compact serialisation
// strictly (no padding, no line breaks, no stray bits).
func DecodeSegment(seg []byte) ([]byte, error) { return decodeSegment(seg) }

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

// DecodeJSON decodes a payload into v strictly: one JSON object, no
// unknown fields, no trailing data, and nothing another JSON reader could
// read otherwise (CheckJSONKeys with ExactFields(v): a key twice or in two
// cases, a field's name in another case, invalid UTF-8). Key errors are
// *JSONKeyError.
func DecodeJSON(p []byte, v any) error {
	if t := bytes.TrimLeft(p, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return errors.New("want a JSON object")
	}
	if err := CheckJSONKeys(p, ExactFields(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	// CheckJSONKeys has refused trailing data.
	return dec.Decode(v)
}
