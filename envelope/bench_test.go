package envelope_test

import (
	"testing"

	"github.com/docaxis/docaxis/envelope"
)

// The bus signs once per envelope and every recipient opens it: these give
// the per-key-type cost of both sides (go test -bench . ./envelope/).
func BenchmarkSeal(b *testing.B) {
	for _, s := range signers(b) {
		b.Run(s.name, func(b *testing.B) {
			e := validEnvelope()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := envelope.Seal(e, s.key, s.chain); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, s := range signers(b) {
		b.Run(s.name, func(b *testing.B) {
			raw, err := envelope.Seal(validEnvelope(), s.key, s.chain)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := envelope.Open(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPeek(b *testing.B) {
	s := signers(b)[0]
	raw, err := envelope.Seal(validEnvelope(), s.key, s.chain)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := envelope.Peek(raw); err != nil {
			b.Fatal(err)
		}
	}
}
