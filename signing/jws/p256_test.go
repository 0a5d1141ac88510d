package jws_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"

	"filippo.io/nistec"

	"github.com/docaxis/docaxis/signing/jws"
)

var p256N = elliptic.P256().Params().N

// rs encodes r||s as a JWS ECDSA signature; values of more than 32 bytes
// are cut to their low 32.
func rs(r, s *big.Int) []byte {
	out := make([]byte, 64)
	rb, sb := r.Bytes(), s.Bytes()
	if len(rb) > 32 {
		rb = rb[len(rb)-32:]
	}
	if len(sb) > 32 {
		sb = sb[len(sb)-32:]
	}
	copy(out[32-len(rb):32], rb)
	copy(out[64-len(sb):], sb)
	return out
}

func ecdsaVerify(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	return ecdsa.Verify(pub, digest, new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]))
}

// TestP256TableAgreesWithECDSA holds the table's verification to
// crypto/ecdsa's on valid signatures, both halves of s, values at and
// past the group order's bounds, and tampered digests and signatures.
func TestP256TableAgreesWithECDSA(t *testing.T) {
	one := big.NewInt(1)
	max256 := new(big.Int).Sub(new(big.Int).Lsh(one, 256), one)
	for i := 0; i < 40; i++ {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		msg := make([]byte, 64)
		rand.Read(msg)
		d := sha256.Sum256(msg)
		r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
		if err != nil {
			t.Fatal(err)
		}
		otherDigest := sha256.Sum256(append(msg, 'x'))
		flipped := d
		flipped[i%32] ^= 1 << (i % 8)
		add := func(a *big.Int, b int64) *big.Int { return new(big.Int).Add(a, big.NewInt(b)) }
		for _, tc := range []struct {
			name   string
			pub    *ecdsa.PublicKey
			digest []byte
			sig    []byte
			want   bool
		}{
			{"valid", &key.PublicKey, d[:], rs(r, s), true},
			{"other half of s", &key.PublicKey, d[:], rs(r, new(big.Int).Sub(p256N, s)), true},
			{"other key", &other.PublicKey, d[:], rs(r, s), false},
			{"other digest", &key.PublicKey, otherDigest[:], rs(r, s), false},
			{"one bit of the digest", &key.PublicKey, flipped[:], rs(r, s), false},
			{"r+1", &key.PublicKey, d[:], rs(add(r, 1), s), false},
			{"s+1", &key.PublicKey, d[:], rs(r, add(s, 1)), false},
			{"r and s swapped", &key.PublicKey, d[:], rs(s, r), false},
			{"r = 0", &key.PublicKey, d[:], rs(new(big.Int), s), false},
			{"s = 0", &key.PublicKey, d[:], rs(r, new(big.Int)), false},
			{"r = n", &key.PublicKey, d[:], rs(p256N, s), false},
			{"s = n", &key.PublicKey, d[:], rs(r, p256N), false},
			{"r + n", &key.PublicKey, d[:], rs(new(big.Int).Add(r, p256N), s), false},
			{"s + n", &key.PublicKey, d[:], rs(r, new(big.Int).Add(s, p256N)), false},
			{"r = n-1", &key.PublicKey, d[:], rs(add(p256N, -1), s), false},
			{"all ones", &key.PublicKey, d[:], rs(max256, max256), false},
			{"short", &key.PublicKey, d[:], rs(r, s)[:63], false},
		} {
			got := jws.P256Verify(tc.pub, tc.digest, tc.sig)
			std := ecdsaVerify(tc.pub, tc.digest, tc.sig)
			if got != std || got != tc.want {
				t.Fatalf("key %d, %s: table says %v, crypto/ecdsa %v, want %v", i, tc.name, got, std, tc.want)
			}
		}
	}
}

// TestOpenVerifiesWithTheKeysTable: once a signer's key has a table, Open
// verifies with it and still refuses a tampered signature or payload.
func TestOpenVerifiesWithTheKeysTable(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A key of its own, which no other test has opened yet (jws does not
	// judge the chain, so the certificate signs itself).
	leaf := cert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "table"}, KeyUsage: x509.KeyUsageDigitalSignature}, nil, key, key.Public())
	chain := []*x509.Certificate{leaf}
	raw, err := jws.Sign([]byte(`{"a":1}`), key, chain, jws.ContentType(cty))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= jws.P256TableAfter; i++ {
		if _, err := jws.Open(raw, jws.ContentType(cty)); err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
	}
	if !jws.P256Tabled(&key.PublicKey) {
		t.Fatalf("after %d opens the key has no table", jws.P256TableAfter+1)
	}
	dot := bytes.LastIndexByte(raw, '.')
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"signature", tamper(raw, dot+10)},
		{"payload", tamper(raw, bytes.IndexByte(raw, '.')+2)},
	} {
		if _, err := jws.Open(tc.raw, jws.ContentType(cty)); !errors.Is(err, jws.ErrBadSignature) {
			t.Errorf("tampered %s opened with the table: err = %v", tc.name, err)
		}
	}
	if _, err := jws.Open(raw, jws.ContentType(cty)); err != nil {
		t.Fatalf("the genuine JWS after the tampered ones: %v", err)
	}
}

// tamper changes the base64url character at i to another valid one.
func tamper(raw []byte, i int) []byte {
	out := bytes.Clone(raw)
	if out[i] == 'A' {
		out[i] = 'B'
	} else {
		out[i] = 'A'
	}
	return out
}

// FuzzP256Verify: for any digest and signature, the table's verification
// says what crypto/ecdsa says.
func FuzzP256Verify(f *testing.F) {
	key := fuzzP256Key(f)
	d := sha256.Sum256([]byte("seed"))
	r, s, err := ecdsa.Sign(rand.Reader, key, d[:])
	if err != nil {
		f.Fatal(err)
	}
	f.Add(d[:], rs(r, s))
	f.Add(d[:], rs(r, new(big.Int).Sub(p256N, s)))
	f.Add(d[:], rs(p256N, s))
	f.Add(d[:], make([]byte, 64))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, digest, sig []byte) {
		if len(digest) != 32 {
			return // SHA-256 digests only: ES256
		}
		if got, want := jws.P256Verify(&key.PublicKey, digest, sig), ecdsaVerify(&key.PublicKey, digest, sig); got != want {
			t.Fatalf("digest %x, signature %x: table says %v, crypto/ecdsa %v", digest, sig, got, want)
		}
	})
}

// fuzzP256Key is one fixed key, so that the fuzzer's corpus stays valid
// from run to run.
func fuzzP256Key(tb testing.TB) *ecdsa.PrivateKey {
	d := sha256.Sum256([]byte("docaxis jws fuzz key"))
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// TestP256TableMultiples holds the table's u·Q to the plain
// multiplication for scalars whose signed digits carry from window to
// window, or sit at the bounds of a digit.
func TestP256TableMultiples(t *testing.T) {
	key := fuzzP256Key(t)
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	q, err := nistec.NewP256Point().SetBytes(pub)
	if err != nil {
		t.Fatal(err)
	}
	fill := func(b byte) (u [32]byte) {
		for i := range u {
			u[i] = b
		}
		return u
	}
	nMinus1 := new(big.Int).Sub(p256N, big.NewInt(1))
	var scalars [][32]byte
	for _, b := range []byte{0x00, 0xff, 0x20, 0x1f, 0x3f, 0x40, 0x80, 0x7f, 0x55, 0xaa, 0x82, 0x08} {
		scalars = append(scalars, fill(b))
	}
	for _, v := range []*big.Int{big.NewInt(1), big.NewInt(31), big.NewInt(32), big.NewInt(33), big.NewInt(63), big.NewInt(64), nMinus1, p256N} {
		var u [32]byte
		v.FillBytes(u[:])
		scalars = append(scalars, u)
	}
	for i := 0; i < 200; i++ {
		var u [32]byte
		rand.Read(u[:])
		scalars = append(scalars, u)
	}
	for _, u := range scalars {
		want, err := nistec.NewP256Point().ScalarMult(q, u[:])
		if err != nil {
			t.Fatal(err)
		}
		if got := jws.P256Mult(&key.PublicKey, &u); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("u = %x: the table gives %x, the plain multiplication %x", u, got, want.Bytes())
		}
	}
}
