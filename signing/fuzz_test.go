package signing_test

import (
	"testing"
	"time"

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

// FuzzApplyCRL: whatever bytes a directory holds under a CA's key, a CRL
// is applied only when that CA signed it, and never revokes a certificate
// of another CA.
func FuzzApplyCRL(f *testing.F) {
	ca := sharedCA(f)
	id := identity(f, codeA, signing.KeyECDSA)
	good, err := ca.NewCRL([]signing.Revocation{{Serial: id.Certificate().SerialNumber, At: time.Now()}}, 1, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("not a CRL"))
	f.Add(good[:len(good)/2])
	other, err := signing.NewCA("other", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	foreign, err := other.Issue(codeB, "B", signing.IssueOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		trust := signing.NewTrust(ca.Cert, other.Cert)
		crl, err := trust.ApplyCRLFor(signing.KeyID(ca.Cert), der)
		if err != nil {
			return
		}
		if err := crl.CheckSignatureFrom(ca.Cert); err != nil {
			t.Fatalf("applied a CRL the CA did not sign: %v", err)
		}
		if _, ok := trust.RevocationOf(foreign.Certificate()); ok {
			t.Fatal("a CRL of one CA revoked another CA's certificate")
		}
	})
}
