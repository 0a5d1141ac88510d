package federation

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
)

// TraceContentType is the JWS "cty" of a trace entry.
const TraceContentType = "application/vnd.docaxis.trace+json"

// Hop is one entry of a message's trace, like an edXML TraceHeader: the
// bus the message crossed and when, signed by that bus. Each entry names
// the exact envelope bytes (their SHA-256) and the entry before it, so the
// list cannot be reordered, cut in the middle or moved to another message.
//
// On the wire each entry is a compact JWS (ES256, the bus certificate chain
// in x5c, cty application/vnd.docaxis.trace+json) whose payload is the
// JSON of the fields below; the entries travel as repeated
// Docaxis-Trace headers, first hop first.
type Hop struct {
	Bus string    `json:"bus"`
	At  time.Time `json:"at"`
	// Envelope is the envelope id, Copy the message id of the copy (the
	// envelope id and the recipient's token for a document, the status id
	// for a status).
	Envelope string `json:"envelope"`
	Copy     string `json:"copy"`
	// Digest is the SHA-256 (hex) of the signed envelope bytes.
	Digest string `json:"digest"`
	// Prev is the SHA-256 (hex) of the previous entry's JWS, "" on the first.
	Prev string `json:"prev,omitempty"`

	// Certificate is the fingerprint of the bus certificate that signed.
	Certificate string `json:"certificate,omitempty"`
	// Signer is that certificate's common name.
	Signer string `json:"signer,omitempty"`
	// Verified is set by VerifyTrace.
	Verified bool `json:"verified"`

	raw   string
	chain []*x509.Certificate
}

type traceHeader struct {
	Alg string   `json:"alg"`
	Typ string   `json:"typ"`
	Cty string   `json:"cty"`
	X5c []string `json:"x5c"`
}

type tracePayload struct {
	Bus      string    `json:"bus"`
	At       time.Time `json:"at"`
	Envelope string    `json:"envelope"`
	Copy     string    `json:"copy"`
	Digest   string    `json:"digest"`
	Prev     string    `json:"prev,omitempty"`
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// appendHop signs a new entry after hops and adds it to h.
func appendHop(h nats.Header, id *BusIdentity, hops []Hop, at time.Time, envID, copyID string, raw []byte) (Hop, error) {
	p := tracePayload{Bus: id.Bus, At: at.UTC(), Envelope: envID, Copy: copyID, Digest: envelope.Digest(raw)}
	if len(hops) > 0 {
		p.Prev = digestOf(hops[len(hops)-1].raw)
	}
	hdr := traceHeader{Alg: envelope.ES256, Typ: "JOSE", Cty: TraceContentType}
	for _, c := range id.Chain {
		hdr.X5c = append(hdr.X5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	hj, err := json.Marshal(hdr)
	if err != nil {
		return Hop{}, err
	}
	pj, err := json.Marshal(p)
	if err != nil {
		return Hop{}, err
	}
	input := base64.RawURLEncoding.EncodeToString(hj) + "." + base64.RawURLEncoding.EncodeToString(pj)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, id.Key, sum[:])
	if err != nil {
		return Hop{}, fmt.Errorf("sign trace entry: %w", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	jws := input + "." + base64.RawURLEncoding.EncodeToString(sig)
	h.Add(HeaderTrace, jws)
	return Hop{Bus: p.Bus, At: p.At, Envelope: envID, Copy: copyID, Digest: p.Digest, Prev: p.Prev,
		Certificate: envelope.Fingerprint(id.Chain[0]), Signer: id.Chain[0].Subject.CommonName, Verified: true, raw: jws, chain: id.Chain}, nil
}

// ParseTrace decodes the trace entries of a message and checks each
// entry's signature against the certificate it carries; it does not
// establish trust in those certificates (VerifyTrace does).
func ParseTrace(h nats.Header) ([]Hop, error) {
	var hops []Hop
	for i, jws := range h.Values(HeaderTrace) {
		hop, err := parseHop(jws)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrTrace, i+1, err)
		}
		hops = append(hops, hop)
	}
	return hops, nil
}

func parseHop(jws string) (Hop, error) {
	parts := bytes.Split([]byte(jws), []byte("."))
	if len(parts) != 3 {
		return Hop{}, fmt.Errorf("not a compact JWS")
	}
	hj, err := base64.RawURLEncoding.DecodeString(string(parts[0]))
	if err != nil {
		return Hop{}, fmt.Errorf("header: %v", err)
	}
	var hdr traceHeader
	if err := envelope.CheckJSONKeys(hj); err != nil {
		return Hop{}, fmt.Errorf("header: %v", err)
	}
	if err := json.Unmarshal(hj, &hdr); err != nil {
		return Hop{}, fmt.Errorf("header: %v", err)
	}
	if hdr.Alg != envelope.ES256 || hdr.Cty != TraceContentType || len(hdr.X5c) == 0 || len(hdr.X5c) > envelope.MaxChain {
		return Hop{}, fmt.Errorf("header: want alg ES256, cty %s and an x5c chain", TraceContentType)
	}
	var chain []*x509.Certificate
	for _, b := range hdr.X5c {
		der, err := base64.StdEncoding.DecodeString(b)
		if err != nil {
			return Hop{}, fmt.Errorf("x5c: %v", err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return Hop{}, fmt.Errorf("x5c: %v", err)
		}
		chain = append(chain, c)
	}
	pub, ok := chain[0].PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return Hop{}, fmt.Errorf("signing certificate has no ECDSA key")
	}
	sig, err := base64.RawURLEncoding.DecodeString(string(parts[2]))
	if err != nil || len(sig) != 64 {
		return Hop{}, fmt.Errorf("signature: want 64 bytes of base64url")
	}
	sum := sha256.Sum256([]byte(jws[:len(parts[0])+1+len(parts[1])]))
	if !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return Hop{}, fmt.Errorf("signature does not match")
	}
	pj, err := base64.RawURLEncoding.DecodeString(string(parts[1]))
	if err != nil {
		return Hop{}, fmt.Errorf("payload: %v", err)
	}
	var p tracePayload
	// A key twice or in two cases reads differently in other JSON readers.
	if err := envelope.CheckJSONKeys(pj, envelope.ExactFields(&p)); err != nil {
		return Hop{}, fmt.Errorf("payload: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(pj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Hop{}, fmt.Errorf("payload: %v", err)
	}
	return Hop{Bus: p.Bus, At: p.At, Envelope: p.Envelope, Copy: p.Copy, Digest: p.Digest, Prev: p.Prev,
		Certificate: envelope.Fingerprint(chain[0]), Signer: chain[0].Subject.CommonName, raw: jws, chain: chain}, nil
}

// VerifyTrace parses the trace of a message carrying the signed envelope
// raw as copy copyID, and checks every entry: its signature; its
// certificate chain, at the entry's time, to the root trustFor returns for
// the entry's bus (nil: unknown bus, ErrUnknownBus); that the certificate
// binds that bus; that it names these envelope bytes and this copy; and
// that it chains to the entry before it. Entries must not go back in time
// by more than the signing package's allowed clock skew.
func VerifyTrace(h nats.Header, raw []byte, copyID string, trustFor func(bus string) *signing.Trust) ([]Hop, error) {
	hops, err := ParseTrace(h)
	if err != nil {
		return nil, err
	}
	digest := envelope.Digest(raw)
	for i := range hops {
		hop := &hops[i]
		t := trustFor(hop.Bus)
		if t == nil {
			return hops, fmt.Errorf("%w %q (trace entry %d)", ErrUnknownBus, hop.Bus, i+1)
		}
		if err := t.VerifyChain(hop.chain, hop.At); err != nil {
			return hops, fmt.Errorf("%w: entry %d (bus %s): %w", ErrTrace, i+1, hop.Bus, err)
		}
		if got := BusOf(hop.chain[0]); got != hop.Bus {
			return hops, fmt.Errorf("%w: entry %d claims bus %s, its certificate binds bus %q", ErrTrace, i+1, hop.Bus, got)
		}
		if hop.Digest != digest || hop.Copy != copyID {
			return hops, fmt.Errorf("%w: entry %d (bus %s) is about copy %s with digest %s, not this message (%s, %s)", ErrTrace, i+1, hop.Bus, hop.Copy, hop.Digest, copyID, digest)
		}
		want := ""
		if i > 0 {
			want = digestOf(hops[i-1].raw)
			if hop.At.Before(hops[i-1].At.Add(-signing.MaxSkew)) {
				return hops, fmt.Errorf("%w: entry %d (bus %s) at %s is before entry %d at %s", ErrTrace, i+1, hop.Bus,
					hop.At.Format(time.RFC3339Nano), i, hops[i-1].At.Format(time.RFC3339Nano))
			}
		}
		if hop.Prev != want {
			return hops, fmt.Errorf("%w: entry %d (bus %s) does not follow entry %d", ErrTrace, i+1, hop.Bus, i)
		}
		hop.Verified = true
	}
	return hops, nil
}

// recordedTime is when a copy counts as recorded by its origin bus, the
// time its sender's signature is judged at. The origin's first trace
// entry says when, but the origin signs it and may choose it: a hostile
// bus would date its agencies' envelopes back, before their certificates
// were revoked or expired. So a bus takes that time only within maxOutage
// before the first other bus that saw the copy, the witness: the next
// entry (the national bus, whose time every bus trusts), or, on the bus
// taking the copy from its origin, this bus's own clock now. A link down
// longer than maxOutage makes an honest copy count as recorded that much
// later. The national bus's own entries are taken as they are.
func recordedTime(hops []Hop, national string, now time.Time, maxOutage time.Duration) time.Time {
	t := hops[0].At
	if hops[0].Bus == national {
		return minTime(t, now)
	}
	witness := now
	if len(hops) > 1 {
		witness = hops[1].At
	}
	if floor := witness.Add(-maxOutage); t.Before(floor) {
		t = floor
	}
	return minTime(t, witness)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
