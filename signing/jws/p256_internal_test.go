package jws

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/docaxis/docaxis/broker/ratelimit"
)

// TestP256TableBuildsBounded: with more keys in steady use than tables
// are kept, tables are not built again and again (each build costs a
// dozen verifications): the builds stay within their budget, and every
// signature still verifies, with a table or without.
func TestP256TableBuildsBounded(t *testing.T) {
	oldTables, oldRate := p256Tables, p256BuildRate
	p256Tables, p256BuildRate = newLRU(4), ratelimit.Rate{PerSecond: 0.001, Burst: 8}
	p256Builds = ratelimit.Limiter{}
	t.Cleanup(func() {
		p256Tables, p256BuildRate = oldTables, oldRate
		p256Builds = ratelimit.Limiter{}
	})
	type signer struct {
		key *ecdsa.PrivateKey
		id  [32]byte
	}
	var keys []signer
	for range 20 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := p256KeyID(&k.PublicKey)
		keys = append(keys, signer{k, id})
	}
	d := sha256.Sum256([]byte("steady"))
	before := p256Built.Load()
	for round := range 20 {
		for i, s := range keys {
			sig, err := signBytes(ES256, s.key, []byte("steady"))
			if err != nil {
				t.Fatal(err)
			}
			tb := p256TableFor(s.id, &s.key.PublicKey)
			ok := false
			if tb != nil {
				ok = tb.verify(d[:], sig)
			} else {
				ok = verifyBytes(ES256, &s.key.PublicKey, []byte("steady"), sig, nil) == nil
			}
			if !ok {
				t.Fatalf("round %d, key %d: a valid signature refused (table %v)", round, i, tb != nil)
			}
		}
	}
	if built := p256Built.Load() - before; built > 8 {
		t.Fatalf("%d tables built for 20 keys in turn with 4 kept, want at most the budget of 8", built)
	}
}
