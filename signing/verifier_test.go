package signing_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

func verifier(roots ...*x509.Certificate) *signing.Verifier {
	return &signing.Verifier{Trust: signing.NewTrust(roots...)}
}

func TestVerifyValid(t *testing.T) {
	v := verifier(sharedCA(t).Cert)
	for _, kt := range keyTypes {
		t.Run(string(kt), func(t *testing.T) {
			id := identity(t, codeA, kt)
			e := document(codeA, codeB, codeC)
			raw, err := id.Seal(e)
			if err != nil {
				t.Fatal(err)
			}
			s, err := v.Verify(raw)
			if err != nil {
				t.Fatalf("Verify = %v", err)
			}
			if s.Envelope.ID != e.ID || s.Envelope.From != codeA || string(s.Raw) != string(raw) {
				t.Errorf("Verify = %+v", s.Envelope)
			}
			// Check on an already opened envelope gives the same answer.
			opened, err := envelope.Open(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Check(opened); err != nil {
				t.Errorf("Check = %v", err)
			}
		})
	}
}

// TestVerifyRefuses covers each reason a recipient refuses a signed
// envelope, with the error class the broker reports to the sender.
func TestVerifyRefuses(t *testing.T) {
	ca := sharedCA(t)
	other, err := signing.NewCA("Other CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a := identity(t, codeA, signing.KeyECDSA)
	b := identity(t, codeB, signing.KeyEd25519)
	rogue, err := other.Issue(codeA, "Rogue A", signing.IssueOptions{KeyType: signing.KeyEd25519})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ca.Issue(codeA, "Expired A", signing.IssueOptions{KeyType: signing.KeyEd25519, NotBefore: time.Now().Add(-72 * time.Hour), Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	future, err := ca.Issue(codeA, "Future A", signing.IssueOptions{KeyType: signing.KeyEd25519, NotBefore: time.Now().Add(24 * time.Hour), Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	inWindow := func(id *signing.Identity) *envelope.Envelope {
		e := document(codeA, codeB)
		e.Created = id.Certificate().NotBefore.Add(time.Hour).UTC().Truncate(time.Millisecond)
		return e
	}
	v := verifier(ca.Cert)
	tests := []struct {
		name  string
		raw   []byte
		want  error
		fault string
	}{
		{"untrusted CA", seal(t, rogue, document(codeA, codeB)), signing.ErrUntrusted, "Rogue A"},
		{"CA certificate itself as signer", func() []byte {
			raw, err := envelope.Seal(document(codeA, codeB), ca.Key, []*x509.Certificate{ca.Cert})
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}(), signing.ErrAgencyMismatch, "binds no agency"},
		{"expired certificate", seal(t, expired, document(codeA, codeB)), signing.ErrExpired, "Expired A"},
		// Dating the envelope back into the certificate's validity does not
		// help: the claimed time must be close to when it was recorded.
		{"backdated into validity", seal(t, expired, inWindow(expired)), envelope.ErrInvalid, "before it was recorded"},
		{"not yet valid", seal(t, future, document(codeA, codeB)), signing.ErrExpired, "Future A"},
		{"spoofed from", seal(t, b, document(codeA, codeC)), signing.ErrAgencyMismatch, codeB},
		{"spoofed from, untrusted", seal(t, func() *signing.Identity {
			id, err := other.Issue(codeB, "Rogue B", signing.IssueOptions{KeyType: signing.KeyEd25519})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}(), document(codeA, codeC)), signing.ErrUntrusted, ""},
		{"invalid content", func() []byte {
			e := document(codeA, codeB)
			raw, err := a.Seal(e)
			if err != nil {
				t.Fatal(err)
			}
			// Re-sign a payload Seal would refuse (no subject).
			s, _ := envelope.Open(raw)
			p := strings.Replace(string(s.Payload), `"subject":"Về việc thử nghiệm"`, `"subject":""`, 1)
			raw, err = envelope.Sign([]byte(p), a.Key, a.Chain)
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}(), envelope.ErrInvalid, "subject"},
		{"tampered", func() []byte {
			raw := seal(t, a, document(codeA, codeB))
			i := strings.IndexByte(string(raw), '.') + 5
			raw[i] ^= 'A' ^ 'B'
			if raw[i] != 'A' && raw[i] != 'B' {
				raw[i] = 'A'
			}
			return raw
		}(), envelope.ErrBadSignature, ""},
		{"unsigned", []byte(`{"id":"x"}`), envelope.ErrUnsigned, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := v.Verify(tt.raw)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			// Nothing unverified may leak to a caller that forgets err.
			if s != nil {
				t.Errorf("Verify returned an envelope with error %v", err)
			}
			for _, class := range []error{signing.ErrUntrusted, signing.ErrExpired, signing.ErrRevoked, signing.ErrAgencyMismatch} {
				if class != tt.want && errors.Is(err, class) {
					t.Errorf("Verify = %v, matches %v as well as %v", err, class, tt.want)
				}
			}
			if !strings.Contains(err.Error(), tt.fault) {
				t.Errorf("Verify = %q, want it to mention %q", err, tt.fault)
			}
		})
	}
}

// TestVerifyAt covers verification as of the time a message was recorded
// (its stream timestamp): what was signed while the certificate was valid
// stays valid afterwards, as an auditor replaying history needs, while the
// claimed creation time must be close to the recorded one.
func TestVerifyAt(t *testing.T) {
	ca := sharedCA(t)
	start := time.Now().Add(-72 * time.Hour)
	old, err := ca.Issue(codeA, "Old A", signing.IssueOptions{KeyType: signing.KeyEd25519, NotBefore: start, Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e := document(codeA, codeB)
	e.Created = start.Add(12 * time.Hour).UTC().Truncate(time.Millisecond)
	raw := seal(t, old, e)
	late := document(codeA, codeB) // signed after the certificate expired
	late.Created = start.Add(30 * time.Hour).UTC().Truncate(time.Millisecond)
	rawLate := seal(t, old, late)
	v := verifier(ca.Cert)
	tests := []struct {
		name string
		raw  []byte
		opts []signing.VerifyOption
		want error
	}{
		{"recorded when created", raw, []signing.VerifyOption{signing.At(e.Created)}, nil},
		{"recorded an hour later", raw, []signing.VerifyOption{signing.At(e.Created.Add(time.Hour))}, nil},
		{"recorded after the certificate expired", raw, []signing.VerifyOption{signing.At(e.Created.Add(20 * time.Hour))}, nil},
		{"verified now (backdated by days)", raw, nil, envelope.ErrInvalid},
		{"recorded past the backdating window", raw, []signing.VerifyOption{signing.At(e.Created.Add(signing.MaxBackdate + time.Minute))}, envelope.ErrInvalid},
		{"recorded before created", raw, []signing.VerifyOption{signing.At(e.Created.Add(-signing.MaxSkew - time.Minute))}, envelope.ErrInvalid},
		{"recorded within the clock skew before", raw, []signing.VerifyOption{signing.At(e.Created.Add(-time.Minute))}, nil},
		{"signed after expiry", rawLate, []signing.VerifyOption{signing.At(late.Created)}, signing.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(tt.raw, tt.opts...)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyImportedCertificate(t *testing.T) {
	ca := sharedCA(t)
	key, chain := importedCert(t, ca, "UBND tỉnh Nghệ An")
	id, err := signing.NewIdentity(codeB, key, chain)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := id.Seal(document(codeB, codeA))
	if err != nil {
		t.Fatal(err)
	}
	v := verifier(ca.Cert)
	if _, err := v.Verify(raw); !errors.Is(err, signing.ErrAgencyMismatch) {
		t.Fatalf("Verify before Bind = %v, want ErrAgencyMismatch", err)
	}
	v.Trust.Bind(codeC, chain[0])
	if _, err := v.Verify(raw); !errors.Is(err, signing.ErrAgencyMismatch) || !strings.Contains(err.Error(), codeC) {
		t.Fatalf("Verify bound to another agency = %v, want ErrAgencyMismatch naming %s", err, codeC)
	}
	v.Trust.Bind(codeB, chain[0])
	if _, err := v.Verify(raw); err != nil {
		t.Fatalf("Verify after Bind = %v", err)
	}
	if got := v.Trust.AgencyOf(chain[0]); got != codeB {
		t.Errorf("Trust.AgencyOf = %q", got)
	}
	// A binding cannot override the code a certificate carries itself.
	a := identity(t, codeA, signing.KeyECDSA)
	v.Trust.Bind(codeB, a.Certificate())
	if got := v.Trust.AgencyOf(a.Certificate()); got != codeA {
		t.Errorf("Trust.AgencyOf(bound over its URI) = %q, want %s", got, codeA)
	}
}

func TestVerifyRevoked(t *testing.T) {
	ca := sharedCA(t)
	id, err := ca.Issue(codeA, "Revoked A", signing.IssueOptions{KeyType: signing.KeyEd25519})
	if err != nil {
		t.Fatal(err)
	}
	before := document(codeA, codeB)
	before.Created = time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Millisecond)
	after := document(codeA, codeB)
	rawBefore, rawAfter := seal(t, id, before), seal(t, id, after)
	v := verifier(ca.Cert)
	for _, raw := range [][]byte{rawBefore, rawAfter} {
		if _, err := v.Verify(raw); err != nil {
			t.Fatalf("Verify before revocation = %v", err)
		}
	}
	at := time.Now().Add(-5 * time.Minute)
	v.Trust.Revoke(envelope.Fingerprint(id.Certificate()), at)
	if got, ok := v.Trust.RevokedAt(envelope.Fingerprint(id.Certificate())); !ok || !got.Equal(at) {
		t.Errorf("RevokedAt = %v, %v", got, ok)
	}
	if _, err := v.Verify(rawAfter); !errors.Is(err, signing.ErrRevoked) {
		t.Errorf("Verify(created after revocation) = %v, want ErrRevoked", err)
	}
	if _, err := v.Verify(rawBefore); err != nil {
		t.Errorf("Verify(created before revocation) = %v", err)
	}
	// Revoked exactly at creation counts as revoked.
	v.Trust.Revoke(envelope.Fingerprint(id.Certificate()), after.Created)
	if _, err := v.Verify(rawAfter); !errors.Is(err, signing.ErrRevoked) {
		t.Errorf("Verify(created at revocation) = %v, want ErrRevoked", err)
	}
	// Another agency's certificate is untouched.
	other := identity(t, codeB, signing.KeyEd25519)
	if _, err := v.Verify(seal(t, other, document(codeB, codeA))); err != nil {
		t.Errorf("Verify(other certificate) = %v", err)
	}
}

// TestTrustGeneration checks that cached chain results follow changes of
// trust: a root added later is honoured at once.
func TestTrustGeneration(t *testing.T) {
	other, err := signing.NewCA("Late CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := other.Issue(codeA, "Late A", signing.IssueOptions{KeyType: signing.KeyEd25519})
	if err != nil {
		t.Fatal(err)
	}
	raw := seal(t, id, document(codeA, codeB))
	v := verifier(sharedCA(t).Cert)
	for range 2 { // the second answer comes from the cache
		if _, err := v.Verify(raw); !errors.Is(err, signing.ErrUntrusted) {
			t.Fatalf("Verify before AddRoot = %v, want ErrUntrusted", err)
		}
	}
	v.Trust.AddRoot(other.Cert)
	v.Trust.AddRoot(other.Cert) // twice is once
	if n := len(v.Trust.Roots()); n != 2 {
		t.Errorf("Roots = %d, want 2", n)
	}
	if _, err := v.Verify(raw); err != nil {
		t.Fatalf("Verify after AddRoot = %v", err)
	}
	// Pool is a copy for TLS and PDF checks: changing it changes no trust.
	pool := v.Trust.Pool()
	if pool.Equal(x509.NewCertPool()) {
		t.Error("Pool is empty")
	}
	pool.AddCert(mustCA(t, "Injected CA").Cert)
	if len(v.Trust.Roots()) != 2 || pool.Equal(v.Trust.Pool()) {
		t.Error("changing the Pool copy changed the trust")
	}
	v.Trust.Revoke(envelope.Fingerprint(id.Certificate()), time.Now().Add(-time.Hour))
	if _, err := v.Verify(raw); !errors.Is(err, signing.ErrRevoked) {
		t.Errorf("Verify after Revoke = %v, want ErrRevoked", err)
	}
}

// TestChainCacheNoRiding checks that a chain verified once does not vouch
// for another chain that shares its leaf or its intermediates.
func TestChainCacheNoRiding(t *testing.T) {
	root := sharedCA(t)
	inter := intermediate(t, root, "Intermediate CA")
	leaf, err := inter.Issue(codeA, "Leaf A", signing.IssueOptions{KeyType: signing.KeyEd25519})
	if err != nil {
		t.Fatal(err)
	}
	good := []*x509.Certificate{leaf.Chain[0], inter.Cert, root.Cert}
	trust := signing.NewTrust(root.Cert)
	now := time.Now()
	if err := trust.VerifyChain(good, now); err != nil {
		t.Fatalf("VerifyChain(good) = %v", err)
	}
	// Same leaf without the intermediate that links it to the root.
	if err := trust.VerifyChain(good[:1], now); !errors.Is(err, signing.ErrUntrusted) {
		t.Errorf("VerifyChain(leaf only) = %v, want ErrUntrusted", err)
	}
	// A forged intermediate with the same name and another key, and a leaf
	// it issued for the same agency and name.
	forgedCA := intermediate(t, mustCA(t, "Intermediate CA"), "Intermediate CA")
	forgedLeaf, err := forgedCA.Issue(codeA, "Leaf A", signing.IssueOptions{KeyType: signing.KeyEd25519})
	if err != nil {
		t.Fatal(err)
	}
	for name, chain := range map[string][]*x509.Certificate{
		"same leaf, forged intermediate": {leaf.Chain[0], forgedCA.Cert},
		"forged leaf, real intermediate": {forgedLeaf.Chain[0], inter.Cert, root.Cert},
		"forged leaf and intermediate":   {forgedLeaf.Chain[0], forgedCA.Cert, root.Cert},
	} {
		if err := trust.VerifyChain(chain, now); !errors.Is(err, signing.ErrUntrusted) {
			t.Errorf("VerifyChain(%s) = %v, want ErrUntrusted", name, err)
		}
	}
	// And the good chain still verifies from the cache.
	if err := trust.VerifyChain(good, now); err != nil {
		t.Errorf("VerifyChain(good, again) = %v", err)
	}
	if err := trust.VerifyChain(nil, now); !errors.Is(err, signing.ErrUntrusted) {
		t.Errorf("VerifyChain(nil) = %v", err)
	}
	// The validity window is checked on every call, cached or not.
	if err := trust.VerifyChain(good, now.Add(3*365*24*time.Hour)); !errors.Is(err, signing.ErrExpired) {
		t.Errorf("VerifyChain(in three years) = %v, want ErrExpired", err)
	}
}

// TestTrustConcurrent runs verifications while trust changes, for the race
// detector (go test -race): every AddRoot makes the next verification miss
// the cache and walk the root pool while another root goes in.
func TestTrustConcurrent(t *testing.T) {
	ca := sharedCA(t)
	id := identity(t, codeA, signing.KeyEd25519)
	raw := seal(t, id, document(codeA, codeB))
	v := verifier(ca.Cert)
	var late []*signing.CA
	for i := range 40 {
		late = append(late, mustCA(t, fmt.Sprintf("Late CA %d", i)))
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range 200 {
				if _, err := v.Verify(raw); err != nil {
					t.Errorf("Verify = %v", err)
					return
				}
			}
		})
	}
	for half := range 2 {
		wg.Go(func() {
			for _, c := range late[half*20 : half*20+20] {
				time.Sleep(time.Millisecond) // spread over the verifications
				v.Trust.AddRoot(c.Cert)
				v.Trust.Revoke(strings.Repeat("0", 64), time.Now())
				_ = v.Trust.Pool()
				_ = v.Trust.Roots()
			}
		})
	}
	wg.Wait()
	if n := len(v.Trust.Roots()); n != 41 {
		t.Errorf("Roots = %d, want 41", n)
	}
}

func TestCheckIncomplete(t *testing.T) {
	v := verifier(sharedCA(t).Cert)
	for name, s := range map[string]*envelope.Signed{
		"nil":         nil,
		"no envelope": {Chain: identity(t, codeA, signing.KeyECDSA).Chain},
		"no chain":    {Envelope: document(codeA, codeB)},
	} {
		if err := v.Check(s); err == nil {
			t.Errorf("Check(%s) = nil", name)
		}
	}
}

func mustCA(t *testing.T, name string) *signing.CA {
	t.Helper()
	ca, err := signing.NewCA(name, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// intermediate returns a CA whose certificate parent issued.
func intermediate(t *testing.T, parent *signing.CA, name string) *signing.CA {
	t.Helper()
	key, err := signing.NewKey(signing.KeyECDSA)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent.Cert, key.Public(), parent.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &signing.CA{Cert: c, Key: key}
}

// TestApplyCRL checks revocation by a CRL of the trusted CA: entries count
// from their revocation time, and a CRL from a CA nobody trusts is refused.
func TestApplyCRL(t *testing.T) {
	ca := sharedCA(t)
	id, err := ca.Issue(codeA, "CRL A", signing.IssueOptions{KeyType: signing.KeyEd25519})
	if err != nil {
		t.Fatal(err)
	}
	before := document(codeA, codeB)
	before.Created = time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Millisecond)
	rawBefore, rawAfter := seal(t, id, before), seal(t, id, document(codeA, codeB))
	v := verifier(ca.Cert)
	if _, err := v.Verify(rawAfter); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	crl, err := ca.NewCRL([]signing.Revocation{{Serial: id.Certificate().SerialNumber, At: at}}, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Trust.ApplyCRL(crl); err != nil {
		t.Fatalf("ApplyCRL = %v", err)
	}
	if got, ok := v.Trust.RevocationOf(id.Certificate()); !ok || !got.Equal(at) {
		t.Errorf("RevocationOf = %v, %v; want %v", got, ok, at)
	}
	if _, err := v.Verify(rawAfter); !errors.Is(err, signing.ErrRevoked) {
		t.Errorf("Verify(after CRL entry) = %v, want ErrRevoked", err)
	}
	if _, err := v.Verify(rawBefore); err != nil {
		t.Errorf("Verify(before CRL entry) = %v", err)
	}
	// The same serial from another issuer is another certificate.
	if _, ok := v.Trust.RevocationOf(identity(t, codeB, signing.KeyEd25519).Certificate()); ok {
		t.Error("an unrelated certificate is revoked")
	}
	stranger := mustCA(t, "Stranger CA")
	bad, err := stranger.NewCRL([]signing.Revocation{{Serial: identity(t, codeB, signing.KeyECDSA).Certificate().SerialNumber, At: at}}, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Trust.ApplyCRL(bad); !errors.Is(err, signing.ErrUntrusted) {
		t.Errorf("ApplyCRL(untrusted) = %v, want ErrUntrusted", err)
	}
	if _, err := v.Trust.ApplyCRL([]byte("not a CRL")); err == nil {
		t.Error("ApplyCRL(garbage) = nil")
	}
}
