package jws

import (
	"crypto/ecdsa"
	"reflect"
)

// The quick pass and the full check, for the tests that hold one to the
// other with the envelope's own shapes (jsonscan_test.go).
var QuickKeysOK = quickKeysOK

func CheckJSONKeysSlow(data []byte, typ reflect.Type) error {
	return checkJSONKeysSlow(data, jsonCheck{typ: typ})
}

// P256Verify checks sig (r||s) over a SHA-256 digest with the key's
// precomputed table, for the tests that hold it to crypto/ecdsa.
func P256Verify(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	id, ok := p256KeyID(pub)
	if !ok {
		panic("not a P-256 key")
	}
	return p256TableFor(id, pub).verify(digest, sig)
}

// P256Tabled says whether the key has a table, that is whether Open now
// verifies its signatures with it.
func P256Tabled(pub *ecdsa.PublicKey) bool {
	id, ok := p256KeyID(pub)
	if !ok {
		return false
	}
	_, ok = p256Tables.get(id)
	return ok
}

// P256TableAfter is how many Opens of one header come before its key
// gets a table.
const P256TableAfter = p256TableAfter

// P256Mult gives u·Q from the key's table, as an uncompressed point.
func P256Mult(pub *ecdsa.PublicKey, u *[32]byte) []byte {
	id, _ := p256KeyID(pub)
	return p256TableFor(id, pub).mult(u).Bytes()
}
