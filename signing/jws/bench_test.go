package jws_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/docaxis/docaxis/envelope"
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

// BenchmarkQuickKeys and BenchmarkScanRoute give the two users of the
// one-pass object walker (jsonscan.go): neither may allocate.
func BenchmarkQuickKeys(b *testing.B) {
	p, err := json.Marshal(quickEnvelope())
	if err != nil {
		b.Fatal(err)
	}
	typ := reflect.TypeOf(envelope.Envelope{})
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if !jws.QuickKeysOK(p, typ) {
			b.Fatal("quick pass refused the envelope")
		}
	}
}

func BenchmarkScanRoute(b *testing.B) {
	st := envelope.NewStatus("000.00.00.H41", "000.00.00.G22", envelope.NewID(), envelope.StateDelivered)
	for _, tc := range []struct {
		name string
		v    any
	}{{"document", quickEnvelope()}, {"status", st}} {
		p, err := json.Marshal(tc.v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, ok := jws.ScanRoute(p); !ok {
					b.Fatal("ScanRoute gave up")
				}
			}
		})
	}
}
