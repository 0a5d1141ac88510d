package federation_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker/federation"
)

func TestParseFedSubject(t *testing.T) {
	for _, c := range []struct {
		prefix, subject                string
		dest, origin, kind, a, b, fail string
	}{
		{prefix: "axis.fedout.", subject: "axis.fedout.VN.doc.000_00_00_G22.000_00_00_H26", dest: "VN", kind: "doc", a: "000.00.00.G22", b: "000.00.00.H26"},
		{prefix: "axis.fedrelay.", subject: "axis.fedrelay.DN.HN.doc.000_00_00_H17.000_00_00_H26", dest: "DN", origin: "HN", kind: "doc", a: "000.00.00.H17", b: "000.00.00.H26"},
		{prefix: "axis.fedrelay.", subject: "axis.fedrelay.DN.doc.000_00_00_H17.000_00_00_H26", dest: "DN", kind: "doc", a: "000.00.00.H17", b: "000.00.00.H26"},
		{prefix: "axis.fedrelay.", subject: "axis.fedrelay.DN.HN.file.env.abc", dest: "DN", origin: "HN", kind: "file", a: "env", b: "abc"},
		{prefix: "axis.fedout.", subject: "axis.fedout.DN.HN.file.env.abc", fail: "origin only on the relay"},
		{prefix: "axis.fedrelay.", subject: "axis.fedrelay.DN.H$N.file.env.abc", fail: "origin not a bus id"},
		{prefix: "axis.fedrelay.", subject: "axis.fedrelay.DN.HN.exec.a.b", fail: "unknown kind"},
		{prefix: "axis.fedout.", subject: "axis.fedrelay.DN.doc.a.b", fail: "other prefix"},
		{prefix: "axis.fedout.", subject: "axis.fedout.DN.doc.a", fail: "too short"},
		{prefix: "axis.fedout.", subject: "axis.fedout..doc.a.b", fail: "no destination"},
	} {
		dest, origin, kind, a, b, err := federation.ParseFedSubject(c.prefix, c.subject)
		if c.fail != "" {
			if !errors.Is(err, federation.ErrRefused) {
				t.Errorf("%s (%s): %v, want a refusal", c.subject, c.fail, err)
			}
			continue
		}
		if err != nil || dest != c.dest || origin != c.origin || kind != c.kind || a != c.a || b != c.b {
			t.Errorf("%s: %q %q %q %q %q %v", c.subject, dest, origin, kind, a, b, err)
		}
		if got := federation.SubjectOf(c.prefix, dest, origin, kind, a, b); got != c.subject {
			t.Errorf("%s built back as %s", c.subject, got)
		}
	}
}

func FuzzParseFedSubject(f *testing.F) {
	for _, s := range []string{"axis.fedout.VN.doc.000_00_00_G22.000_00_00_H26", "axis.fedrelay.DN.HN.file.e.s", "axis.fedrelay.DN.doc.a.b", "axis.fedrelay.a.b.c.d.e.f", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		for _, prefix := range []string{"axis.fedout.", "axis.fedrelay."} {
			dest, origin, kind, a, b, err := federation.ParseFedSubject(prefix, subject)
			if err != nil {
				if !errors.Is(err, federation.ErrRefused) {
					t.Fatalf("%q: error %v is not a refusal", subject, err)
				}
				continue
			}
			if federation.CheckBusID(dest) != nil || (origin != "" && (prefix != "axis.fedrelay." || federation.CheckBusID(origin) != nil)) {
				t.Fatalf("%q: dest %q origin %q", subject, dest, origin)
			}
			// What parses names exactly one subject of the same shape.
			again := federation.SubjectOf(prefix, dest, origin, kind, a, b)
			d2, o2, k2, a2, b2, err := federation.ParseFedSubject(prefix, again)
			if err != nil || d2 != dest || o2 != origin || k2 != kind || a2 != a || b2 != b {
				t.Fatalf("%q → %q does not parse back: %v", subject, again, err)
			}
			if strings.Count(again, ".") != strings.Count(subject, ".") {
				t.Fatalf("%q rebuilt as %q", subject, again)
			}
		}
	})
}

func TestParseChunk(t *testing.T) {
	for _, c := range []struct {
		v    string
		i, n int64
		ok   bool
	}{
		{"1/1", 1, 1, true}, {"3/7", 3, 7, true}, {"0/1", 0, 0, false}, {"2/1", 0, 0, false}, {"-1/2", 0, 0, false},
		{"1", 0, 0, false}, {"", 0, 0, false}, {"1/99999999999", 0, 0, false}, {"a/b", 0, 0, false}, {"1/2/3", 0, 0, false},
	} {
		i, n, err := federation.ParseChunk(c.v)
		if (err == nil) != c.ok || i != c.i || n != c.n {
			t.Errorf("%q: %d/%d %v", c.v, i, n, err)
		}
	}
}

func FuzzParseChunk(f *testing.F) {
	for _, s := range []string{"1/1", "12/400", "0/0", "/", "1/1048576"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		i, n, err := federation.ParseChunk(v)
		if err != nil {
			if !errors.Is(err, federation.ErrRefused) {
				t.Fatalf("%q: %v is not a refusal", v, err)
			}
			return
		}
		if i < 1 || i > n || n > 1<<20 {
			t.Fatalf("%q parsed as %d/%d", v, i, n)
		}
	})
}
