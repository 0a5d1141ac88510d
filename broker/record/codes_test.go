package record_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/record"
)

func TestCodePatternMatch(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{"*.*.*.H14", []string{"000.00.00.H14", "000.05.01.H14"}, []string{"000.00.00.H41", "000.00.00.H140", "H14", "000.00.H14"}},
		{"000.05.*.*", []string{"000.05.00.H14", "000.05.99.G01"}, []string{"000.06.00.H14", "001.05.00.H14"}},
		{"000.00.00.H14", []string{"000.00.00.H14"}, []string{"000.00.01.H14"}},
		{"*.*.*.G*", []string{"000.00.00.G22", "000.00.00.G01"}, []string{"000.00.00.H22"}},
		{"*.*.*.H1*", []string{"000.00.00.H14", "000.00.00.H1"}, []string{"000.00.00.H21"}},
		{"SO-TEST", []string{"SO-TEST"}, []string{"SO-TEST2", "000.00.00.H14"}},
	}
	for _, tt := range tests {
		p, err := record.ParseCodePattern(tt.pattern)
		if err != nil {
			t.Fatalf("%s: %v", tt.pattern, err)
		}
		for _, c := range tt.match {
			if !p.Match(c) {
				t.Errorf("%s does not match %s", tt.pattern, c)
			}
		}
		for _, c := range tt.miss {
			if p.Match(c) {
				t.Errorf("%s matches %s", tt.pattern, c)
			}
		}
	}
}

func TestCodePatternOverlap(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"*.*.*.H14", "000.05.*.*", true}, // 000.05.xx.H14
		{"*.*.*.H14", "*.*.*.H41", false},
		{"*.*.*.H1*", "*.*.*.H14", true},
		{"*.*.*.H1*", "*.*.*.H2*", false},
		{"*.*.*.H1*", "*.*.*.H*", true},
		{"000.00.00.H14", "000.00.00.H14", true},
		{"000.00.00.H14", "000.00.01.H14", false},
		{"*.*.*.H14", "*.*.H14", false}, // different number of fields
		{"*.*.*.G*", "000.00.00.G22", true},
	}
	for _, tt := range tests {
		a, _ := record.ParseCodePattern(tt.a)
		b, _ := record.ParseCodePattern(tt.b)
		if got := a.Overlaps(b); got != tt.want {
			t.Errorf("%s overlaps %s = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := b.Overlaps(a); got != tt.want {
			t.Errorf("%s overlaps %s = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestParseCodePatterns(t *testing.T) {
	b, err := record.ParseCodePatterns(" 000.05.*.* , 000.00.00.H14,000.05.*.*,")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(b.Strings(), ","); got != "000.00.00.H14,000.05.*.*" {
		t.Fatalf("patterns %s", got)
	}
	if !b.Covers("000.05.01.H41") || b.Covers("000.06.00.H14") {
		t.Fatal("Covers")
	}
	for _, bad := range []string{"*H.*.*.H14", "000..00.H14", "000.00.00.H_14", "000.00.00.H 14", "**", "a*b", ".", strings.Repeat("9", 65), "000.00.00.H14>"} {
		if _, err := record.ParseCodePatterns(bad); !errors.Is(err, record.ErrCodePattern) {
			t.Errorf("ParseCodePatterns(%q) = %v, want ErrCodePattern", bad, err)
		}
	}
}

// FuzzCodePattern: any input either is refused or gives a pattern that
// matches consistently with its overlap with an exact code.
func FuzzCodePattern(f *testing.F) {
	for _, s := range []string{"*.*.*.H14", "000.05.*.*", "000.00.00.H14", "*.*.*.G*", "*", "a.b*", "", "..", "*.*"} {
		f.Add(s, "000.05.00.H14")
	}
	f.Fuzz(func(t *testing.T, pattern, code string) {
		p, err := record.ParseCodePattern(pattern)
		if err != nil {
			if !errors.Is(err, record.ErrCodePattern) {
				t.Fatalf("error %v does not wrap ErrCodePattern", err)
			}
			return
		}
		if p.String() != pattern {
			t.Fatalf("pattern %q prints as %q", pattern, p.String())
		}
		exact, err := record.ParseCodePattern(code)
		if err != nil || strings.Contains(code, "*") {
			return
		}
		if p.Match(code) != p.Overlaps(exact) {
			t.Fatalf("%q: matches %q = %v, overlaps it = %v", pattern, code, p.Match(code), p.Overlaps(exact))
		}
		if !p.Overlaps(p) {
			t.Fatalf("%q does not overlap itself", pattern)
		}
	})
}

func TestBindingsClaim(t *testing.T) {
	m := record.Bindings{}
	m.Add(record.BusBinding{ID: "H14", Codes: []string{"*.*.*.H14"}})
	m.Add(record.BusBinding{ID: "VN", Codes: []string{"*.*.*.G*"}})
	m.Add(record.BusBinding{ID: "old"}) // admitted before bindings
	m.Add(record.BusBinding{ID: "gone", Codes: []string{"*.*.*.H99"}, Removed: time.Now()})
	tests := []struct {
		bus, code string
		ok        bool
	}{
		{"H14", "000.00.00.H14", true},
		{"H14", "000.00.00.G22", false}, // bound to VN
		{"H14", "000.00.00.H41", false}, // outside its own binding
		{"VN", "000.01.00.H14", false},
		{"old", "000.00.00.H41", true}, // bound to nobody
		{"old", "000.00.00.H14", false},
		{"old", "000.00.00.H99", true}, // its bus left
		{"", "000.00.00.H41", true},
	}
	for _, tt := range tests {
		err := m.Claim(tt.bus, tt.code)
		if (err == nil) != tt.ok {
			t.Errorf("bus %s claims %s: %v, want ok=%v", tt.bus, tt.code, err, tt.ok)
		}
		if err != nil && !errors.Is(err, record.ErrNotBound) {
			t.Errorf("bus %s claims %s: %v does not wrap ErrNotBound", tt.bus, tt.code, err)
		}
	}
}

// FuzzBusBinding: any bus entry either does not decode or gives a binding
// whose codes no other bus may claim.
func FuzzBusBinding(f *testing.F) {
	f.Add([]byte(`{"id":"HN","codes":["*.*.*.H14","000.05.*.*"]}`), "000.05.00.H14")
	f.Add([]byte(`{"id":"HN","codes":["*.*.*.H14"],"removed":"2026-12-04T10:00:00Z"}`), "000.00.00.H14")
	f.Add([]byte(`{"id":"HN","codes":["**"]}`), "x")
	f.Add([]byte(`{"id":""}`), "")
	f.Fuzz(func(t *testing.T, value []byte, code string) {
		b, err := record.DecodeBusBinding(value)
		if err != nil {
			return
		}
		m := record.Bindings{}
		m.Add(b)
		own := m[b.ID]
		if len(own) > 0 && own.Covers(code) {
			if err := m.Claim(b.ID+"-other", code); !errors.Is(err, record.ErrNotBound) {
				t.Fatalf("another bus claims %q bound to %s: %v", code, b.ID, err)
			}
			if err := m.Claim(b.ID, code); err != nil {
				t.Fatalf("%s cannot claim its own %q: %v", b.ID, code, err)
			}
		}
	})
}
