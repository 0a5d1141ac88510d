package vxp_test

import (
	"bytes"
	"testing"

	"github.com/docaxis/docaxis/broker/httpapi/vxp"
)

// The header decoding: never a panic; what parses has a value for every
// key it lists.
func FuzzParseSignHeader(f *testing.F) {
	for _, s := range []string{
		`{"XroadVnpt-systemid":"vxp.saas.03","XroadVnpt-timestamp":"04122026T101717+0981","XroadVnpt-Content-Type":"application/json"}`,
		`{"XroadVnpt-docId":"a","XroadVnpt-docid":"b"}`, `{"XroadVnpt-to":"[{\"x\":1}]"}`, `{"XroadVnpt-a":1e9}`, `{}`, `{"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := vxp.ParseSignHeader(b)
		if err != nil {
			return
		}
		for _, k := range p.Keys() {
			_ = p.Get(k)
		}
	})
}

// The body decoding of registerAgency: never a panic.
func FuzzParseLenientObject(f *testing.F) {
	for _, s := range []string{
		`{"code":"000.01.02.H41","name":"Sở"}`, `{id:12, pcode:000.00.00.H41, name:So Noi vu}`, `{'a'=>'b';c=d}`, `{"a":{"b":[1,{"c":2}]}}`, `{`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = vxp.ParseLenientObject(s)
	})
}

// The sendEdoc body: a file and the SDK's CRLF, tied by the lossy hash.
func FuzzHashFile(f *testing.F) {
	f.Add([]byte("hello\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h := vxp.HashFile(b)
		if len(h) < 32 || len(h) > 64 {
			t.Fatalf("hash-file of %d chars", len(h))
		}
	})
}

// FuzzFileSize: whatever the body, the file found is the body or the body
// less one CRLF, and only when the hash says so.
func FuzzFileSize(f *testing.F) {
	f.Add([]byte("<edXML/>\r\n"), true)
	f.Add([]byte("\r\n"), false)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, body []byte, sdk bool) {
		file := body
		if sdk {
			body = append(append([]byte{}, file...), '\r', '\n')
		}
		n, err := vxp.FileSize(bytes.NewReader(body), int64(len(body)), vxp.HashFile(file))
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if vxp.HashFile(body[:n]) != vxp.HashFile(file) {
			t.Fatalf("%q: took %d bytes", body, n)
		}
	})
}
