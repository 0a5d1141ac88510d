package signing_test

import (
	"bytes"
	"flag"
	"testing"
	"time"

	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/signingtest"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden from the current code")

// TestGoldenBinding holds SignBinding to the bytes it made before the JWS
// layer moved to signing/jws (testdata/golden, written by that code with
// -update): same header and payload (ES256 signatures are randomised), and
// the old binding still opens.
func TestGoldenBinding(t *testing.T) {
	b := signing.Binding{Agency: codeA, System: "dms-01", From: time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)}
	if *updateGolden {
		ca := sharedCA(t)
		raw, err := ca.SignBinding(b)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := signing.EncodeKey(ca.Key)
		if err != nil {
			t.Fatal(err)
		}
		signingtest.WriteGolden(t, "ca.key", kp)
		signingtest.WriteGolden(t, "ca.crt", signing.EncodeCerts(ca.Cert))
		signingtest.WriteGolden(t, "binding.jws", []byte(raw))
	}
	key, err := signing.ParseKey(signingtest.ReadGolden(t, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	certs, err := signing.ParseCerts(signingtest.ReadGolden(t, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	ca := &signing.CA{Cert: certs[0], Key: key}
	want := signingtest.ReadGolden(t, "binding.jws")
	got, err := ca.SignBinding(b)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := []byte(got)[:bytes.LastIndexByte([]byte(got), '.')], want[:bytes.LastIndexByte(want, '.')]; !bytes.Equal(g, w) {
		t.Errorf("signing input differs:\n got %s\nwant %s", g, w)
	}
	trust := signing.NewTrust(ca.Cert)
	for name, raw := range map[string]string{"golden": string(want), "new": got} {
		ob, kid, err := trust.OpenBinding(raw)
		if err != nil || ob != b || kid != signing.KeyID(ca.Cert) {
			t.Errorf("OpenBinding(%s) = %+v, %s, %v", name, ob, kid, err)
		}
	}
}
