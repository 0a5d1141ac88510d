package federation_test

import (
	"crypto/ecdsa"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden from the current code")

// TestGoldenTrace holds trace entries to the bytes the trace codec made
// before the JWS layer moved to signing/jws (testdata/golden, written by
// that code with -update): same header and payload for a first and a
// second entry (ES256 signatures are randomised), and the old entries
// still parse.
func TestGoldenTrace(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	at := time.Date(2026, 12, 4, 20, 0, 0, 123456789, time.UTC)
	raw := []byte("eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
	if *updateGolden {
		ca, err := signing.NewCA("golden federation CA", 100*365*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		id, err := federation.LoadBusIdentity(t.TempDir(), "HN", ca)
		if err != nil {
			t.Fatal(err)
		}
		if err := signing.SaveKeyPair(dir, id.Key, id.Chain); err != nil {
			t.Fatal(err)
		}
		h := nats.Header{}
		hop, err := id.AppendHop(h, nil, at, "0190a5d4-7c3e-7a8b-9c1d-2e3f4a5b6c7d", "0190a5d4-7c3e-7a8b-9c1d-2e3f4a5b6c7d.000_00_00_H41", raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := id.AppendHop(h, []federation.Hop{hop}, at.Add(time.Second), "0190a5d4-7c3e-7a8b-9c1d-2e3f4a5b6c7d", "0190a5d4-7c3e-7a8b-9c1d-2e3f4a5b6c7d.000_00_00_H41", raw); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "trace.txt"), []byte(strings.Join(h.Values(federation.HeaderTrace), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key, chain, err := signing.LoadKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := &federation.BusIdentity{Bus: "HN", Key: key.(*ecdsa.PrivateKey), Chain: chain}
	b, err := os.ReadFile(filepath.Join(dir, "trace.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(string(b))
	wh := nats.Header{federation.HeaderTrace: want}
	wantHops, err := federation.ParseTrace(wh)
	if err != nil || len(wantHops) != 2 {
		t.Fatalf("ParseTrace(golden) = %d hops, %v", len(wantHops), err)
	}
	h := nats.Header{}
	hop, err := id.AppendHop(h, nil, at, "0190a5d4-7c3e-7a8b-9c1d-2e3f4a5b6c7d", "0190a5d4-7c3e-7a8b-9c1d-2e3f4a5b6c7d.000_00_00_H41", raw)
	if err != nil {
		t.Fatal(err)
	}
	// The second entry follows the golden first one, so that its prev is
	// the golden's.
	if _, err := id.AppendHop(h, wantHops[:1], at.Add(time.Second), "0190a5d4-7c3e-7a8b-9c1d-2e3f4a5b6c7d", "0190a5d4-7c3e-7a8b-9c1d-2e3f4a5b6c7d.000_00_00_H41", raw); err != nil {
		t.Fatal(err)
	}
	got := h.Values(federation.HeaderTrace)
	for i := range want {
		g, w := got[i][:strings.LastIndexByte(got[i], '.')], want[i][:strings.LastIndexByte(want[i], '.')]
		if g != w {
			t.Errorf("entry %d: signing input differs:\n got %s\nwant %s", i+1, g, w)
		}
	}
	gotHops, err := federation.ParseTrace(h)
	if err != nil || len(gotHops) != 2 {
		t.Fatalf("ParseTrace(new) = %d hops, %v", len(gotHops), err)
	}
	if gotHops[0].Certificate != wantHops[0].Certificate || gotHops[0].Signer != wantHops[0].Signer || !gotHops[0].At.Equal(hop.At) {
		t.Errorf("hop = %+v, want %+v", gotHops[0], wantHops[0])
	}
}
