package tsa_test

import (
	"testing"

	"github.com/docaxis/docaxis/broker/tsa"
)

func FuzzParseResponse(f *testing.F) {
	_, a := newAuthority(f)
	q, _ := tsa.NewRequest([]byte("seed"))
	good, err := a.Sign(q)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := tsa.ParseResponse(b)
		if err == nil && (tok.Signer == nil || len(tok.Digest) == 0) {
			t.Fatal("a token without signer or imprint was accepted")
		}
	})
}

func FuzzParseRequest(f *testing.F) {
	q, _ := tsa.NewRequest([]byte("seed"))
	der, _ := q.Marshal()
	f.Add(der)
	_, a := newAuthority(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := tsa.ParseRequest(b)
		if err == nil && len(r.Digest) != r.Hash.Size() {
			t.Fatal("imprint size not checked")
		}
		// The TSA answers anything with a response, never an error.
		if _, err := a.Respond(b); err != nil {
			t.Fatal(err)
		}
	})
}
