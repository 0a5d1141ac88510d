package vxp_test

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker/httpapi/vxp"
)

// The test vector of PROTOCOL.md §3.
func TestHMACVector(t *testing.T) {
	header := `{"XroadVnpt-systemid":"vxp.saas.03","XroadVnpt-timestamp":"04122026T101717+0981","XroadVnpt-Content-Type":"application/json"}`
	const want = "72ecdff1ebfc601caa6f4819062377d5811c6e28a54d47cfeafb362cd850a3d8"
	if got := vxp.Sign("s3cret", []byte(header)); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		name, secret, header, hash string
		ok                         bool
	}{
		{"vector", "s3cret", header, want, true},
		{"upper-case hex", "s3cret", header, strings.ToUpper(want), true},
		{"wrong secret", "s3cret ", header, want, false},
		{"header changed", "s3cret", strings.Replace(header, "03", "04", 1), want, false},
		{"truncated hash", "s3cret", header, want[:62], false},
		{"not hex", "s3cret", header, strings.Repeat("zz", 32), false},
		{"empty hash", "s3cret", header, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := vxp.CheckSignature(tc.secret, []byte(tc.header), tc.hash); got != tc.ok {
				t.Fatalf("CheckSignature = %v", got)
			}
		})
	}
}

// The test client must order keys as the SDK does: the captured request
// of PROTOCOL.md §3 signs systemid;timestamp;Content-Type.
func TestJavaMapOrder(t *testing.T) {
	m := newJavaMap()
	for _, k := range []string{"systemid", "timestamp", "Content-Type"} {
		m.put(k, "x")
	}
	if got := strings.Join(m.order(), ";"); got != "systemid;timestamp;Content-Type" {
		t.Fatalf("order %s", got)
	}
}

func TestLossyHex(t *testing.T) {
	got := vxp.HashFile([]byte("hello\n"))
	if got != "5891b5b522d5df86dff0b110fbd9d21bb4fc7163af34d08286a2e846f6be3" {
		t.Fatalf("HashFile = %s", got)
	}
	sum := sha256.Sum256([]byte("hello\n"))
	if vxp.LossyHex(sum[:]) != got {
		t.Fatal("LossyHex differs from HashFile")
	}
}

func TestParseSignHeader(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
	}{
		{"captured", `{"XroadVnpt-systemid":"sys.a","XroadVnpt-timestamp":"04122026T101717+0981","XroadVnpt-Content-Type":"application/json"}`,
			map[string]string{"systemid": "sys.a", "timestamp": "04122026T101717+0981", "Content-Type": "application/json"}},
		{"leaked keys, both docId spellings", `{"XroadVnpt-docid":"old","XroadVnpt-systemid":"s","XroadVnpt-docId":"new","XroadVnpt-status":"done"}`,
			map[string]string{"docId": "new", "DOCID": "old", "status": "done"}},
		{"non-ASCII raw", `{"XroadVnpt-systemid":"s","XroadVnpt-name":"Hà Nội"}`, map[string]string{"name": "Hà Nội"}},
		{"number", `{"XroadVnpt-systemid":"s","XroadVnpt-level":1}`, map[string]string{"level": "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := vxp.ParseSignHeader([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got := p.Get(k); got != v {
					t.Fatalf("Get(%s) = %q, want %q", k, got, v)
				}
			}
		})
	}
	for _, bad := range []string{
		``, `[]`, `{`, `{"XroadVnpt-a":"1"`, `{"a":"1"}`, `{"XroadVnpt-":"1"}`, `{"XroadVnpt-a":{"b":1}}`,
		`{"XroadVnpt-a":["x"]}`, `{"XroadVnpt-a":"1","XroadVnpt-a":"2"}`, `{"XroadVnpt-a":"1"} {}`, `{"XroadVnpt-a":null}`,
		`{"XroadVnpt-a":"` + strings.Repeat("x", 40<<10) + `"}`,
	} {
		if _, err := vxp.ParseSignHeader([]byte(bad)); !errors.Is(err, vxp.ErrSignHeader) {
			t.Errorf("ParseSignHeader(%.40q): %v", bad, err)
		}
	}
}

func TestParseLenientObject(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]string
	}{
		{"json", `{"code":"000.01.02.H41","name":"Sở Nội vụ","pcode":"000.00.00.H41"}`,
			map[string]string{"code": "000.01.02.H41", "name": "Sở Nội vụ", "pcode": "000.00.00.H41"}},
		{"VNPT's example, unquoted", `{id:12, pcode:000.00.00.H41, code:000.01.02.H41, name:So Noi vu, mail:snv@x.vn, mobile:, fax:null}`,
			map[string]string{"id": "12", "pcode": "000.00.00.H41", "code": "000.01.02.H41", "name": "So Noi vu", "mail": "snv@x.vn"}},
		{"single quotes and =", `{'code'='000.01.02.H41'; 'name' => 'A, B'}`, map[string]string{"code": "000.01.02.H41", "name": "A, B"}},
		{"nested kept as text", `{"code":"X","extra":{"a":[1,2]}}`, map[string]string{"code": "X", "extra": `{"a":[1,2]}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := vxp.ParseLenientObject(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("%s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
	for _, bad := range []string{``, `code:1`, `{"code":"1"`, `{"code" "1"}`, `{"code":"1} `, `{"a":{"b":1}`, `{"a":1} x`, `{:1}`} {
		if _, err := vxp.ParseLenientObject(bad); err == nil {
			t.Errorf("ParseLenientObject(%q) accepted", bad)
		}
	}
}
