package jws_test

import (
	"bytes"
	"testing"

	"github.com/docaxis/docaxis/signing/jws"
)

// BenchmarkSign and BenchmarkOpen give the JWS layer's own cost per key
// type, without any payload model (go test -bench . ./signing/jws/).
func BenchmarkSign(b *testing.B) {
	payload := bytes.Repeat([]byte("a"), 2048)
	for _, s := range signers(b) {
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jws.Sign(payload, s.key, s.chain, jws.ContentType(cty), jws.KeyID()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	payload := bytes.Repeat([]byte("a"), 2048)
	for _, s := range signers(b) {
		b.Run(s.name, func(b *testing.B) {
			raw, err := jws.Sign(payload, s.key, s.chain, jws.ContentType(cty), jws.KeyID())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := jws.Open(raw, jws.ContentType(cty)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
