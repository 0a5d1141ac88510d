package main

import (
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     uint64
		ok       bool
	}{
		{"plain", "4242 (docaxis) S 1 4242 4242 0 -1 4194560 2047 0 0 0 150 37 0 0 20 0 12 0 100 0 0", 187, true},
		{"name with spaces and parentheses", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0", 11, true},
		{"short", "7 (x) R 1 2 3", 0, false},
		{"no name", "7 x R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0", 0, false},
		{"not a number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 five 6 0 0", 0, false},
		{"empty", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tc.in))
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("parseProcStat(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestParseVmRSS(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     float64
		ok       bool
	}{
		{"status", "Name:\tdocaxis\nVmPeak:\t 900000 kB\nVmRSS:\t  524288 kB\nRssAnon:\t 1 kB\n", 512, true},
		{"missing", "Name:\tdocaxis\n", 0, false},
		{"garbage", "VmRSS:\tlots kB\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVmRSS([]byte(tc.in))
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("parseVmRSS(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("4242 (docaxis) S 1 4242 4242 0 -1 4194560 2047 0 0 0 150 37 0 0 20 0 12 0 100 0 0"))
	f.Add([]byte("7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 5 6 0 0"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseProcStat(b)
		if err != nil && n != 0 {
			t.Fatalf("error %v with a value %d", err, n)
		}
	})
}

func FuzzParseVmRSS(f *testing.F) {
	f.Add([]byte("VmRSS:\t  524288 kB\n"))
	f.Add([]byte("VmRSS:"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseVmRSS(b)
		if err != nil && v != 0 {
			t.Fatalf("error %v with a value %v", err, v)
		}
	})
}

// The generated directory: standard codes, no duplicate, every parent
// before its children (an import checks parents first).
func TestBenchCodes(t *testing.T) {
	for _, n := range []int{1, 10, 1021, 5000} {
		list := benchCodes(n)
		if len(list) != n {
			t.Fatalf("benchCodes(%d): %d codes", n, len(list))
		}
		seen := map[string]bool{}
		for _, a := range list {
			if !envelope.IsStandardCode(a.code) {
				t.Fatalf("benchCodes(%d): %q is not a standard code", n, a.code)
			}
			if seen[a.code] {
				t.Fatalf("benchCodes(%d): %s twice", n, a.code)
			}
			if a.parent != "" && !seen[a.parent] {
				t.Fatalf("benchCodes(%d): %s comes before its parent %s", n, a.code, a.parent)
			}
			seen[a.code] = true
		}
	}
	if last := benchCodes(maxBenchAgencies)[maxBenchAgencies-1].code; !strings.HasSuffix(last, "K99") {
		t.Fatalf("the last of %d codes is %s, want one of K99", maxBenchAgencies, last)
	}
}

func TestTenthRates(t *testing.T) {
	t0 := time.Unix(0, 0)
	var marks []time.Time
	var done []int
	var cpu []float64
	for i := 0; i <= 20; i++ {
		marks = append(marks, t0.Add(time.Duration(i)*time.Second))
		done = append(done, i*500)        // 500 entries a second
		cpu = append(cpu, float64(i)*100) // 100 ms of CPU per 500 entries
	}
	first, last := tenthRates(marks, done)
	if first != 500 || last != 500 {
		t.Fatalf("tenthRates = %v, %v; want 500, 500", first, last)
	}
	cf, cl := tenthCosts(cpu, done)
	if cf != 200 || cl != 200 {
		t.Fatalf("tenthCosts = %v, %v; want 200, 200 ms per 1,000", cf, cl)
	}
}
