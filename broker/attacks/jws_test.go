package attacks_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/jws"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Attacks on the one JWS layer (signing/jws) through every statement that
// opens with it: envelopes in a mailbox, federation trace entries, audit
// checkpoints, directory bindings. Each forged statement is signed
// correctly by a key its sender really holds, so that only the check
// under attack can refuse it: a statement of one kind passed off as
// another, header parameters a lax reader would ignore or read two ways,
// an algorithm the statement never uses, encodings that give one
// signature to several byte strings.

// jwsForge signs header.payload as the attacker's own tool would: any
// header JSON, any payload, the signature right for key.
func jwsForge(t testing.TB, key crypto.Signer, header string, payload []byte) []byte {
	t.Helper()
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(payload)
	var sig []byte
	switch k := key.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, []byte(input))
	case *ecdsa.PrivateKey:
		d := sha256.Sum256([]byte(input))
		der, err := k.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &rs); err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		rs.R.FillBytes(sig[:32])
		rs.S.FillBytes(sig[32:])
	default:
		t.Fatalf("key %T", key)
	}
	return []byte(input + "." + base64.RawURLEncoding.EncodeToString(sig))
}

// jwsHeader is a protected header for chain with alg and cty, plus extra
// parameters (a nil value removes one).
func jwsHeader(t testing.TB, alg, cty string, chain []*x509.Certificate, extra map[string]any) string {
	t.Helper()
	var x5c []string
	for _, c := range chain {
		x5c = append(x5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	h := map[string]any{"alg": alg, "typ": "JOSE", "cty": cty, "x5c": x5c}
	for k, v := range extra {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// jwsRawSend publishes raw, as the attacker with its own credentials, into
// the victim recipient's mailbox as the copy of envelope id.
func (a *arena) jwsRawSend(raw []byte, id string) {
	a.t.Helper()
	nc, _ := a.raw(attacker)
	js, err := jetstream.New(nc)
	if err != nil {
		a.t.Fatal(err)
	}
	msg := &nats.Msg{Subject: record.DocSubject(victimRecipient, attacker), Data: raw, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, record.DocMsgID(id, victimRecipient))
	msg.Header.Set(record.HeaderEnvelope, id)
	if _, err := js.PublishMsg(ctxT(a.t), msg); err != nil {
		a.t.Fatalf("publish as %s: %v", attacker, err)
	}
}

// H99 signs, with its own agency key, envelopes to H14 whose protected
// header says more than the JWS layer reads (critical parameters, a key
// URL, the algorithm twice, a parameter in another case), and statements
// of other kinds (a checkpoint, a trace entry) addressed as envelopes.
// The mailbox refuses every one and hands none to H14's application.
func TestAttackJWSHeadersInMailbox(t *testing.T) {
	a := newArena(t)
	ident := a.bus.Identity(attacker)
	chain := ident.Chain
	alg, err := jws.AlgorithmFor(ident.Key.Public())
	if err != nil {
		t.Fatal(err)
	}
	x5c0 := base64.StdEncoding.EncodeToString(chain[0].Raw)
	tests := []struct {
		name    string
		header  func() string
		payload func(e *envelope.Envelope) []byte
	}{
		{"crit", func() string {
			return jwsHeader(t, alg, envelope.ContentType, chain, map[string]any{"crit": []string{"exp"}, "exp": 1})
		}, nil},
		{"jku", func() string {
			return jwsHeader(t, alg, envelope.ContentType, chain, map[string]any{"jku": "https://attacker.example/keys"})
		}, nil},
		{"alg twice", func() string {
			return `{"alg":"none","alg":"` + alg + `","x5c":["` + x5c0 + `"]}`
		}, nil},
		{"Alg in capitals", func() string {
			return `{"Alg":"none","alg":"` + alg + `","x5c":["` + x5c0 + `"]}`
		}, nil},
		{"a checkpoint as an envelope", func() string {
			return jwsHeader(t, alg, audit.CheckpointContentType, chain, nil)
		}, func(*envelope.Envelope) []byte {
			return []byte(`{"seq":1,"head":"00","time":"2026-12-04T20:00:00Z","reason":"request"}`)
		}},
		{"a trace entry as an envelope", func() string {
			return jwsHeader(t, alg, federation.TraceContentType, chain, nil)
		}, func(e *envelope.Envelope) []byte {
			return []byte(`{"bus":"HN","at":"2026-12-04T20:00:00Z","envelope":"` + e.ID + `","copy":"x","digest":"00"}`)
		}},
	}
	var ids []string
	for _, tc := range tests {
		e := envelope.New(attacker, []string{victimRecipient}, "Giấy mời họp")
		payload, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if tc.payload != nil {
			payload = tc.payload(e)
		}
		a.jwsRawSend(jwsForge(t, ident.Key, tc.header(), payload), e.ID)
		ids = append(ids, e.ID)
	}
	outs, handed := a.envelopeReceive(t.TempDir())
	if len(handed) != 0 {
		t.Errorf("handed to the application: %v", handed)
	}
	// A statement of another kind names no envelope: its outcome has no id.
	refused := 0
	for _, o := range outs {
		if o.Verified || o.Error == "" {
			t.Errorf("outcome %+v, want refused", o)
			continue
		}
		refused++
	}
	if refused != len(ids) {
		t.Errorf("%d refused, want %d: %+v", refused, len(ids), outs)
	}
}

// A bus operator (or whoever holds a bus key) forges trace entries that a
// lax parser would take: the one JWS layer refuses every one before the
// trace is judged.
func TestAttackJWSTraceEntries(t *testing.T) {
	a := newArena(t)
	bus, err := federation.LoadBusIdentity(filepath.Join(t.TempDir(), "federation"), "HN", a.bus.CA)
	if err != nil {
		t.Fatal(err)
	}
	auditKey, err := audit.NewKey(a.bus.CA, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// An Ed25519 key with a bus certificate, issued by hand as a hostile
	// CA operator would: trace entries are ES256 only.
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edCert, err := signing.Issue(a.bus.CA, signing.PurposeSystem, "hn-ed", edKey.Public(), signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw := []byte("eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
	copyID := "0190a5d4-7c3e-7a8b-9c1d-2e3f4a5b6c7d.000_00_00_H14"
	payload, _ := json.Marshal(map[string]any{"bus": "HN", "at": time.Now().UTC(), "envelope": "0190a5d4-7c3e-7a8b-9c1d-2e3f4a5b6c7d",
		"copy": copyID, "digest": envelope.Digest(raw)})
	good := jwsForge(t, bus.Key, jwsHeader(t, jws.ES256, federation.TraceContentType, bus.Chain, nil), payload)
	if _, err := federation.ParseTrace(nats.Header{federation.HeaderTrace: {string(good)}}); err != nil {
		t.Fatalf("the honest entry: %v", err)
	}
	parts := strings.Split(string(good), ".")
	cp, err := auditKey.Sign(audit.Checkpoint{Seq: 1, Head: "00", Time: time.Now(), Reason: "request"})
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string][]byte{
		"crit":                        jwsForge(t, bus.Key, jwsHeader(t, jws.ES256, federation.TraceContentType, bus.Chain, map[string]any{"crit": []string{"b64"}, "b64": false}), payload),
		"unknown parameter":           jwsForge(t, bus.Key, jwsHeader(t, jws.ES256, federation.TraceContentType, bus.Chain, map[string]any{"x5u": "https://attacker.example/hn.pem"}), payload),
		"no content type":             jwsForge(t, bus.Key, jwsHeader(t, jws.ES256, federation.TraceContentType, bus.Chain, map[string]any{"cty": nil}), payload),
		"an envelope's content type":  jwsForge(t, bus.Key, jwsHeader(t, jws.ES256, envelope.ContentType, bus.Chain, nil), payload),
		"an audit checkpoint":         cp.Raw,
		"the audit key as a bus":      jwsForge(t, auditKey.Signer, jwsHeader(t, jws.ES256, federation.TraceContentType, auditKey.Chain, nil), payload),
		"EdDSA":                       jwsForge(t, edKey, jwsHeader(t, jws.EdDSA, federation.TraceContentType, []*x509.Certificate{edCert, a.bus.CA.Cert}, nil), payload),
		"padded payload":              []byte(parts[0] + "." + parts[1] + "=." + parts[2]),
		"line break in the signature": []byte(parts[0] + "." + parts[1] + "." + parts[2][:20] + "\n" + parts[2][20:]),
		"JSON serialisation":          []byte(`{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`),
	}
	for name, entry := range tests {
		h := nats.Header{federation.HeaderTrace: {string(good), string(entry)}}
		// ParseTrace checks signatures, not who may sign: the audit key's
		// entry is for VerifyTrace to refuse.
		if hops, err := federation.ParseTrace(h); !errors.Is(err, federation.ErrTrace) && name != "the audit key as a bus" {
			t.Errorf("%s: ParseTrace = %d hops, %v; want ErrTrace", name, len(hops), err)
		}
		trust := func(string) *signing.Trust { return a.bus.Trust }
		if _, err := federation.VerifyTrace(h, raw, copyID, trust); err == nil {
			t.Errorf("%s: VerifyTrace accepted it", name)
		}
	}
}

// Checkpoints are the audit key's alone: a statement of another kind, a
// header a lax reader would take, or an agency's key refused; and a
// directory binding is the CA's alone, whatever its header says.
func TestAttackJWSCheckpointsAndBindings(t *testing.T) {
	a := newArena(t)
	auditKey, err := audit.NewKey(a.bus.CA, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := []*x509.Certificate{a.bus.CA.Cert}
	cp := audit.Checkpoint{Seq: 7, Head: strings.Repeat("ab", 32), Time: time.Now().UTC().Truncate(time.Second), Reason: "request"}
	payload, _ := json.Marshal(cp)
	honest, err := auditKey.Sign(cp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.VerifyCheckpoint(honest.Raw, roots); err != nil {
		t.Fatalf("the honest checkpoint: %v", err)
	}
	agency := a.bus.Identity(attacker)
	bus, err := federation.LoadBusIdentity(filepath.Join(t.TempDir(), "federation"), "HN", a.bus.CA)
	if err != nil {
		t.Fatal(err)
	}
	h := nats.Header{}
	if _, err := bus.AppendHop(h, nil, time.Now(), "x", "y", []byte("z")); err != nil {
		t.Fatal(err)
	}
	cty := audit.CheckpointContentType
	tests := map[string][]byte{
		"an agency's key":          jwsForge(t, agency.Key, jwsHeader(t, jws.ES256, cty, agency.Chain, nil), payload),
		"a bus key":                jwsForge(t, bus.Key, jwsHeader(t, jws.ES256, cty, bus.Chain, nil), payload),
		"a trace entry":            []byte(h.Get(federation.HeaderTrace)),
		"crit":                     jwsForge(t, auditKey.Signer, jwsHeader(t, jws.ES256, cty, auditKey.Chain, map[string]any{"crit": []string{"exp"}, "exp": 1}), payload),
		"cty twice":                jwsForge(t, auditKey.Signer, strings.Replace(jwsHeader(t, jws.ES256, cty, auditKey.Chain, nil), `"cty":`, `"cty":"x","Cty":`, 1), payload),
		"an envelope's cty":        jwsForge(t, auditKey.Signer, jwsHeader(t, jws.ES256, envelope.ContentType, auditKey.Chain, nil), payload),
		"seq twice in the payload": jwsForge(t, auditKey.Signer, jwsHeader(t, jws.ES256, cty, auditKey.Chain, nil), []byte(strings.Replace(string(payload), `"seq":7`, `"seq":7,"Seq":99999`, 1))),
	}
	for name, raw := range tests {
		if sc, err := audit.VerifyCheckpoint(raw, roots); !errors.Is(err, audit.ErrCheckpoint) {
			t.Errorf("%s: VerifyCheckpoint = %+v, %v; want ErrCheckpoint", name, sc, err)
		}
	}

	// Bindings: an agency signs one for itself; the CA's own with a header
	// a lax reader would take.
	b := signing.Binding{Agency: attacker, System: "dms-evil", From: time.Now().UTC().Truncate(time.Second)}
	bp, _ := json.Marshal(b)
	bindings := map[string][]byte{
		"signed by an agency": jwsForge(t, agency.Key, jwsHeader(t, jws.ES256, envelope.ContentType, agency.Chain, nil), bp),
		"crit":                jwsForge(t, a.bus.CA.Key, jwsHeader(t, jws.ES256, envelope.ContentType, []*x509.Certificate{a.bus.CA.Cert}, map[string]any{"crit": []string{"exp"}}), bp),
		"system twice":        jwsForge(t, a.bus.CA.Key, jwsHeader(t, jws.ES256, envelope.ContentType, []*x509.Certificate{a.bus.CA.Cert}, nil), []byte(strings.Replace(string(bp), `"system":`, `"System":"dms-01","system":`, 1))),
	}
	for name, raw := range bindings {
		if got, _, err := a.bus.Trust.OpenBinding(string(raw)); err == nil {
			t.Errorf("binding %s: OpenBinding = %+v", name, got)
		}
	}
}
