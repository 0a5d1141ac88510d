package federation

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/jws"
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
	pj, err := json.Marshal(p)
	if err != nil {
		return Hop{}, err
	}
	signed, err := jws.Sign(pj, id.Key, id.Chain, jws.ContentType(TraceContentType), jws.Algorithms(jws.ES256))
	if err != nil {
		return Hop{}, fmt.Errorf("sign trace entry: %w", err)
	}
	entry := string(signed)
	h.Add(HeaderTrace, entry)
	return Hop{Bus: p.Bus, At: p.At, Envelope: envID, Copy: copyID, Digest: p.Digest, Prev: p.Prev,
		Certificate: envelope.Fingerprint(id.Chain[0]), Signer: id.Chain[0].Subject.CommonName, Verified: true, raw: entry, chain: id.Chain}, nil
}

// ParseTrace decodes the trace entries of a message and checks each
// entry's signature against the certificate it carries; it does not
// establish trust in those certificates (VerifyTrace does).
func ParseTrace(h nats.Header) ([]Hop, error) {
	var hops []Hop
	for i, entry := range h.Values(HeaderTrace) {
		hop, err := parseHop(entry)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrTrace, i+1, err)
		}
		hops = append(hops, hop)
	}
	return hops, nil
}

func parseHop(entry string) (Hop, error) {
	// A trace entry is ES256 (bus keys are P-256) with its content type; no
	// other JWS is taken for one.
	s, err := jws.Open([]byte(entry), jws.ContentType(TraceContentType), jws.Algorithms(jws.ES256))
	if err != nil {
		return Hop{}, err
	}
	var p tracePayload
	if err := jws.DecodeJSON(s.Payload, &p); err != nil {
		return Hop{}, fmt.Errorf("payload: %v", err)
	}
	return Hop{Bus: p.Bus, At: p.At, Envelope: p.Envelope, Copy: p.Copy, Digest: p.Digest, Prev: p.Prev,
		Certificate: jws.Fingerprint(s.Chain[0]), Signer: s.Chain[0].Subject.CommonName, raw: entry, chain: s.Chain}, nil
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
		if got := signing.BusOf(hop.chain[0]); got != hop.Bus {
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
// before the witness: the national bus's entry (its time every bus
// trusts), or, where there is none (on the national, taking the copy from
// its origin), this bus's own clock now. Never another entry: the origin
// may sign a second entry of its own, dated back as well. A link down
// longer than maxOutage makes an honest copy count as recorded that much
// later. The national bus's own entries are taken as they are.
func recordedTime(hops []Hop, national string, now time.Time, maxOutage time.Duration) time.Time {
	t := hops[0].At
	if hops[0].Bus == national {
		return minTime(t, now)
	}
	witness := now
	for _, h := range hops[1:] {
		if h.Bus == national {
			witness = h.At
			break
		}
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
