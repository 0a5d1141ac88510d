package jws

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/binary"
	"math/big"
	"sync/atomic"
	"time"

	"filippo.io/nistec"

	"github.com/docaxis/docaxis/broker/ratelimit"
)

// p256Table holds multiples of one P-256 public key Q, table[i][j] =
// (j+1)·64^i·Q, so that u·Q is the sum of at most 43 of them or their
// negatives (u in signed base-64 digits): a verification with it skips the
// 255 doublings of a variable-base multiplication and takes about half the
// time of crypto/ecdsa's. Every agency signs thousands of statements with
// one key, and each is verified up to three times (the recipient, the bus
// for the copy and for the receipt), in audit replay again. A table is
// 132 KiB and costs about ten verifications to build, so only keys in
// steady use get one.
//
// Verification works on public values only (the key, the message, the
// signature), so this code need not run in constant time.
type p256Table [p256Windows][p256Digit]nistec.P256Point

const (
	p256WindowBits = 6
	p256Windows    = (256 + p256WindowBits - 1) / p256WindowBits // 43
	p256Digit      = 1 << (p256WindowBits - 1)                   // digits in [-32, 31]
)

// p256Tables keeps the tables of the keys verified most recently, keyed by
// the SHA-256 of the key's uncompressed point. Bounded: 256 tables are
// 24 MiB, whatever keys a flood of signers makes up.
var p256Tables = newLRU(256)

// p256TableAfter is how many verifications of one cached header come
// before its key gets a table.
const p256TableAfter = 16

// p256Builds bounds how many tables are built a second. When more keys are
// in steady use than p256Tables keeps, tables would be evicted and built
// again over and over, each build costing a dozen verifications; with the
// bound, the first 256 keys get theirs at once and then at most 50 a
// second (about 2 % of a core) do, whatever the pattern of signers.
var (
	p256Builds    ratelimit.Limiter
	p256BuildRate = ratelimit.Rate{PerSecond: 50, Burst: 256}
	p256Built     atomic.Uint64 // tables built, for the tests
)

// p256Order is the order n of the P-256 group.
var p256Order = elliptic.P256().Params().N

// p256KeyID names a P-256 key in p256Tables; ok is false for any other key.
func p256KeyID(pub any) (id [32]byte, ok bool) {
	k, isECDSA := pub.(*ecdsa.PublicKey)
	if !isECDSA || k.Curve != elliptic.P256() {
		return id, false
	}
	b, err := k.Bytes()
	if err != nil {
		return id, false
	}
	return sha256.Sum256(b), true
}

// p256TableFor returns the table of a P-256 key, building it when no table
// is kept; nil when the key is not a valid P-256 key or the builds of this
// second are spent.
func p256TableFor(id [32]byte, pub *ecdsa.PublicKey) *p256Table {
	if v, ok := p256Tables.get(id); ok {
		return v.(*p256Table)
	}
	if _, ok := p256Builds.Take("", p256BuildRate, time.Now()); !ok {
		return nil
	}
	b, err := pub.Bytes()
	if err != nil {
		return nil
	}
	p256Built.Add(1)
	t, err := newP256Table(b)
	if err != nil {
		return nil
	}
	p256Tables.put(id, t)
	return t
}

// newP256Table builds the table of the key whose uncompressed point is
// given.
func newP256Table(point []byte) (*p256Table, error) {
	q, err := nistec.NewP256Point().SetBytes(point)
	if err != nil {
		return nil, err
	}
	t := new(p256Table)
	base := nistec.NewP256Point().Set(q) // 64^i·Q
	for i := range t {
		t[i][0].Set(base)
		for j := 1; j < p256Digit; j++ {
			t[i][j].Add(&t[i][j-1], base)
		}
		base.Double(&t[i][p256Digit-1])
	}
	return t, nil
}

// mult returns u·Q for the 32-byte big-endian scalar u.
func (t *p256Table) mult(u *[32]byte) *nistec.P256Point {
	var limbs [5]uint64 // little-endian, one spare so a window may read past bit 255
	for i := range 4 {
		limbs[i] = binary.BigEndian.Uint64(u[24-8*i:])
	}
	acc := nistec.NewP256Point() // the point at infinity
	var neg nistec.P256Point
	carry := uint64(0)
	for i := range t {
		bit := i * p256WindowBits
		v := limbs[bit/64] >> (bit % 64)
		if bit%64 > 64-p256WindowBits {
			v |= limbs[bit/64+1] << (64 - bit%64)
		}
		d := int(v&(1<<p256WindowBits-1) + carry)
		carry = 0
		if d >= p256Digit {
			d -= 1 << p256WindowBits
			carry = 1
		}
		switch {
		case d > 0:
			acc.Add(acc, &t[i][d-1])
		case d < 0:
			acc.Add(acc, neg.Negate(&t[i][-d-1]))
		}
	}
	// The top window holds 4 bits, so its digit is at most 16 and leaves
	// no carry.
	return acc
}

// verify checks an ECDSA signature r||s (32 bytes each) over a SHA-256
// digest, as crypto/ecdsa.Verify does: r and s in [1, n-1], R = u1·G +
// u2·Q with w = s⁻¹, u1 = e·w, u2 = r·w (mod n), and R's x mod n equal to
// r. Both halves of a signature (s and n-s) pass, as with crypto/ecdsa.
func (t *p256Table) verify(digest []byte, sig []byte) bool {
	if len(sig) != 64 || len(digest) != 32 {
		return false
	}
	n := p256Order
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(n) >= 0 || s.Cmp(n) >= 0 {
		return false
	}
	w := new(big.Int).ModInverse(s, n)
	if w == nil {
		return false
	}
	e := new(big.Int).SetBytes(digest)
	u1 := e.Mul(e, w)
	u1.Mod(u1, n)
	u2 := w.Mul(r, w)
	u2.Mod(u2, n)
	var b1, b2 [32]byte
	u1.FillBytes(b1[:])
	u2.FillBytes(b2[:])
	p, err := nistec.NewP256Point().ScalarBaseMult(b1[:])
	if err != nil {
		return false
	}
	p.Add(p, t.mult(&b2))
	x, err := p.BytesX() // fails for the point at infinity
	if err != nil {
		return false
	}
	v := new(big.Int).SetBytes(x)
	v.Mod(v, n)
	return v.Cmp(r) == 0
}
