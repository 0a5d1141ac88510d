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
	"sync"
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
	return Sign(payload, key, chain)
}

// headerCache keeps the encoded protected header per signing chain: it is
// the same for every envelope a key signs.
var headerCache sync.Map // string(leaf DER) + alg -> []byte

// Sign produces a JWS compact serialisation of payload.
func Sign(payload []byte, key crypto.Signer, chain []*x509.Certificate) ([]byte, error) {
	if len(chain) == 0 {
		return nil, errors.New("sign: no certificate chain")
	}
	alg, err := AlgorithmFor(key.Public())
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	ck := alg + string(chain[0].Raw)
	hdr, ok := headerCache.Load(ck)
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
		headerCache.Store(ck, hdr)
	}
	hb := hdr.([]byte)
	n := len(hb) + 1 + base64.RawURLEncoding.EncodedLen(len(payload))
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
		return err
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

// chainCache keeps parsed x5c chains: the same sender's chain arrives with
// every envelope it sends, and parsing X.509 costs more than a verify.
var chainCache = newLRU(4096)

// Open decodes raw strictly, checks its signature against the leaf
// certificate in x5c and decodes the envelope from the signed payload. It
// does not establish trust in the chain (see signing.Verifier).
func Open(raw []byte) (*Signed, error) {
	if len(raw) > MaxWireSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(raw), MaxWireSize)
	}
	if len(raw) == 0 {
		return nil, malformed("empty input")
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' && json.Valid(t) {
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
	s := &Signed{Raw: raw}
	hj, err := decodeSegment(hseg)
	if err != nil {
		return nil, malformed("protected header: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(hj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s.Header); err != nil {
		return nil, malformed("protected header: %v", err)
	}
	if len(s.Header.Crit) > 0 {
		return nil, malformed("protected header: unsupported critical parameters %v", s.Header.Crit)
	}
	if s.Header.Alg == "none" || s.Header.Alg == "" {
		return nil, fmt.Errorf("%w: alg %q", ErrUnsigned, s.Header.Alg)
	}
	if len(s.Header.X5c) == 0 {
		return nil, malformed("protected header: no x5c certificate chain")
	}
	if len(s.Header.X5c) > 8 {
		return nil, malformed("protected header: x5c has %d certificates, at most 8", len(s.Header.X5c))
	}
	if s.Chain, err = parseChain(s.Header.X5c); err != nil {
		return nil, err
	}
	if s.Signature, err = decodeSegment(sseg); err != nil {
		return nil, malformed("signature: %v", err)
	}
	if err := verifyBytes(s.Header.Alg, s.Chain[0].PublicKey, raw[:last], s.Signature); err != nil {
		return nil, err
	}
	if s.Payload, err = decodeSegment(pseg); err != nil {
		return nil, malformed("payload: %v", err)
	}
	if s.Envelope, err = DecodePayload(s.Payload); err != nil {
		return nil, err
	}
	return s, nil
}

// DecodePayload decodes an envelope's JSON strictly: unknown fields,
// trailing data and wrong types are errors.
func DecodePayload(p []byte) (*Envelope, error) {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	var e Envelope
	if err := dec.Decode(&e); err != nil {
		return nil, malformed("payload: %v", err)
	}
	if dec.More() {
		return nil, malformed("payload: trailing data after the envelope")
	}
	return &e, nil
}

func decodeSegment(seg []byte) ([]byte, error) {
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(seg)))
	n, err := base64.RawURLEncoding.Strict().Decode(out, seg)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

func parseChain(x5c []string) ([]*x509.Certificate, error) {
	key := fmt.Sprint(x5c)
	if c, ok := chainCache.get(key); ok {
		return c.([]*x509.Certificate), nil
	}
	chain := make([]*x509.Certificate, 0, len(x5c))
	for i, b := range x5c {
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
	chainCache.put(key, chain)
	return chain, nil
}

func asn1Unmarshal(der []byte, v any) ([]byte, error) { return asn1.Unmarshal(der, v) }

// Peek decodes the envelope inside raw WITHOUT checking its signature. It
// is for routing and diagnostics only (naming the sender of a bad message,
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
	return DecodePayload(p)
}
