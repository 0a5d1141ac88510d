package envelope

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/docaxis/docaxis/signing/jws"
)

// MaxWireSize bounds a signed envelope. NATS carries at most 1 MiB per
// message including headers; the rest is headroom.
const MaxWireSize = 960 << 10

// ContentType is the JWS "cty" of a docaxis envelope.
const ContentType = "application/vnd.docaxis.envelope+json"

// Supported JWS algorithms (signing/jws).
const (
	ES256 = jws.ES256
	ES384 = jws.ES384
	EdDSA = jws.EdDSA
	RS256 = jws.RS256
	PS256 = jws.PS256
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
type Header = jws.Header

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
func AlgorithmFor(pub crypto.PublicKey) (string, error) { return jws.AlgorithmFor(pub) }

// Fingerprint is the hex SHA-256 of a certificate's DER bytes.
func Fingerprint(c *x509.Certificate) string { return jws.Fingerprint(c) }

// MaxChain bounds the certificates in x5c.
const MaxChain = jws.MaxChain

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

// signOptions make the header every envelope has always had: cty
// ContentType and the leaf's fingerprint in kid. Made once: options built
// per call would cost an allocation on the hot path.
var signOptions = []jws.SignOption{jws.ContentType(ContentType), jws.KeyID(), jws.WithMaxSize(MaxWireSize)}

// openOptions take any content type: envelopes from other JOSE tools have
// always been read whatever their cty.
var openOptions = []jws.OpenOption{jws.WithMaxSize(MaxWireSize)}

// Sign produces a JWS compact serialisation of payload (signing/jws with
// the envelope's header).
func Sign(payload []byte, key crypto.Signer, chain []*x509.Certificate) ([]byte, error) {
	raw, err := jws.Sign(payload, key, chain, signOptions...)
	return raw, fromJWS(err)
}

// OpenJWS decodes raw strictly and checks its signature against the leaf
// certificate in x5c, whatever the payload is (Envelope stays nil): the
// one JWS layer for every signed statement of the bus (signing/jws). It
// does not establish trust in the chain.
func OpenJWS(raw []byte) (*Signed, error) {
	j, err := jws.Open(raw, openOptions...)
	if err != nil {
		return nil, fromJWS(err)
	}
	return &Signed{Raw: j.Raw, Header: j.Header, Payload: j.Payload, Chain: j.Chain, Signature: j.Signature}, nil
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

// fromJWS names an error of the JWS layer as the envelope's: the envelope
// sentinel of the same kind, the text it always had, and the jws sentinel
// still matched.
func fromJWS(err error) error {
	var je *jws.Error
	if err == nil || !errors.As(err, &je) {
		return err
	}
	for _, m := range [...]struct{ jws, env error }{
		{jws.ErrMalformed, ErrMalformed}, {jws.ErrTooLarge, ErrTooLarge},
		{jws.ErrBadSignature, ErrBadSignature}, {jws.ErrUnsigned, ErrUnsigned},
	} {
		if je.Err == m.jws {
			return &openError{env: m.env, jws: je}
		}
	}
	return err
}

type openError struct {
	env error
	jws *jws.Error
}

func (e *openError) Error() string {
	if e.jws.Detail == "" {
		return e.env.Error()
	}
	return e.env.Error() + ": " + e.jws.Detail
}

func (e *openError) Unwrap() []error { return []error{e.env, e.jws} }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
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

func decodeSegment(seg []byte) ([]byte, error) { return jws.DecodeSegment(seg) }

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
