package main

import (
	"testing"
	"time"
)

func TestParseLongDuration(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"10y", 3650 * day, true},
		{"7d", 7 * day, true},
		{"36h", 36 * time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"0", 0, true},
		{"-1", -1, true},
		{"-1d", -day, true},
		{"y", 0, false},
		{"1.5y", 0, false},
		{"10 years", 0, false},
		{"99999999999y", 0, false},
		{"2147483647y", 0, false},
		{"201y", 0, false},
		{"73001d", 0, false},
		{"200y", 200 * 365 * day, true},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := parseLongDuration(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("parseLongDuration(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	v := longDuration(3650 * day)
	if v.String() != "10y" {
		t.Errorf("String = %q", v.String())
	}
}

// FuzzParseLongDuration: what parses prints back to the same duration.
func FuzzParseLongDuration(f *testing.F) {
	for _, s := range []string{"10y", "7d", "36h", "-1", "0", "1h30m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseLongDuration(s)
		if err != nil {
			return
		}
		v := longDuration(d)
		back, err := parseLongDuration(v.String())
		if err != nil || back != d {
			t.Fatalf("%q → %v → %q → %v, %v", s, d, v.String(), back, err)
		}
	})
}
