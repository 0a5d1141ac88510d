package signing_test

import (
	"testing"

	"github.com/docaxis/docaxis/signing"
)

// BenchmarkSeal and BenchmarkVerify give the sign and verify cost per key
// type as the bus pays it: Identity.Seal at the sender, Verifier.Verify
// (decode, signature, cached chain, agency, revocation, content) at every
// recipient.
func BenchmarkSeal(b *testing.B) {
	for _, kt := range keyTypes {
		b.Run(string(kt), func(b *testing.B) {
			id := identity(b, codeA, kt)
			e := document(codeA, codeB)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := id.Seal(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, kt := range keyTypes {
		b.Run(string(kt), func(b *testing.B) {
			id := identity(b, codeA, kt)
			raw, err := id.Seal(document(codeA, codeB))
			if err != nil {
				b.Fatal(err)
			}
			v := &signing.Verifier{Trust: signing.NewTrust(sharedCA(b).Cert)}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
