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

// The per-envelope JSON work of every recipient and of the tracker: the
// key check, and the strict decode (which includes it).
func BenchmarkCheckJSONKeys(b *testing.B) {
	p := mustJSON(b, validEnvelope())
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if err := envelope.CheckJSONKeys(p, envelope.ExactFields(envelope.Envelope{})); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePayload(b *testing.B) {
	p := mustJSON(b, validEnvelope())
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := envelope.DecodePayload(p); err != nil {
			b.Fatal(err)
		}
	}
}
