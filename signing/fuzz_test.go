package signing_test

import (
	"testing"

	"github.com/docaxis/docaxis/signing"
)

// FuzzParsePEM feeds key and certificate files as an operator might import
// them: nothing may panic, and whatever parses as a key can sign.
func FuzzParsePEM(f *testing.F) {
	id := identity(f, codeA, signing.KeyECDSA)
	kp, err := signing.EncodeKey(id.Key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(kp)
	f.Add(signing.EncodeCerts(id.Chain...))
	f.Add(append(signing.EncodeCerts(id.Chain...), kp...))
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\n\n-----END RSA PRIVATE KEY-----\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		if k, err := signing.ParseKey(data); err == nil {
			if k == nil || k.Public() == nil {
				t.Fatal("ParseKey returned no key and no error")
			}
		}
		if certs, err := signing.ParseCerts(data); err == nil {
			if len(certs) == 0 {
				t.Fatal("ParseCerts returned no certificate and no error")
			}
			for _, c := range certs {
				_ = signing.AgencyOf(c)
			}
		}
	})
}
