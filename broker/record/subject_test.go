package record_test

import (
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/record"
)

func TestParseSubject(t *testing.T) {
	for _, tc := range []struct {
		subject string
		want    record.Subject
		ok      bool
	}{
		{"axis.doc.000_00_00_H14.000_00_00_G22", record.Subject{Kind: "doc", To: "000.00.00.H14", From: "000.00.00.G22"}, true},
		{"axis.status.000_00_00_G22.000_00_00_H14", record.Subject{Kind: "status", To: "000.00.00.G22", From: "000.00.00.H14"}, true},
		{"axis.doc.A.B", record.Subject{Kind: "doc", To: "A", From: "B"}, true},
		{"axis.doc.A", record.Subject{}, false},
		{"axis.doc.A.B.C", record.Subject{}, false},
		{"axis.doc..B", record.Subject{}, false},
		{"axis.doc.A.", record.Subject{}, false},
		{"axis.evt.track.A", record.Subject{}, false},
		{"axis.doc.*.B", record.Subject{}, false},
		{"axis.doc.A.>", record.Subject{}, false},
		{"axis.doc.A.B ", record.Subject{}, false},
		{"axis.doc.A\r\n.B", record.Subject{}, false},
		{"axis.doc.A\tX.B", record.Subject{}, false},
		{"axis.doc.A-1.B", record.Subject{Kind: "doc", To: "A-1", From: "B"}, true},
		{"axis.quarantine.A", record.Subject{}, false},
		{"axis.svc.quarantine.A", record.Subject{}, false},
		{"other.doc.A.B", record.Subject{}, false},
		{"axis", record.Subject{}, false},
		{"", record.Subject{}, false},
	} {
		got, ok := record.ParseSubject(tc.subject)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseSubject(%q) = %+v, %v; want %+v, %v", tc.subject, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSubjectRoundTrip(t *testing.T) {
	for _, s := range []string{
		record.DocSubject("000.00.00.H14", "000.00.00.G22"),
		record.StatusSubject("000.00.00.G22", "000.00.00.H14"),
	} {
		p, ok := record.ParseSubject(s)
		if !ok || p.String() != s {
			t.Errorf("ParseSubject(%q) = %+v, %v; String() = %q", s, p, ok, p.String())
		}
	}
}

func TestFilters(t *testing.T) {
	got := record.AgencyFilters("000.00.00.H14")
	want := []string{"axis.doc.000_00_00_H14.*", "axis.doc.*.000_00_00_H14", "axis.status.000_00_00_H14.*", "axis.status.*.000_00_00_H14"}
	if len(got) != len(want) {
		t.Fatalf("AgencyFilters = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("AgencyFilters[%d] = %q, want %q", i, got[i], want[i])
		}
	}
}

// FuzzParseSubject: the parser never panics, and what it accepts is a
// record subject whose codes map back to the same tokens (the mapping is
// reversible for every code it yields).
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{"axis.doc.000_00_00_H14.000_00_00_G22", "axis.status.A.B", "axis.doc..", "axis.doc.a.b.c", "axis.evt.track.x", "axis.doc.a_.b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subject string) {
		s, ok := record.ParseSubject(subject)
		if !ok {
			if s != (record.Subject{}) {
				t.Fatalf("refused %q but returned %+v", subject, s)
			}
			return
		}
		if s.Kind != record.KindDoc && s.Kind != record.KindStatus {
			t.Fatalf("accepted %q with kind %q", subject, s.Kind)
		}
		if s.To == "" || s.From == "" {
			t.Fatalf("accepted %q with an empty agency: %+v", subject, s)
		}
		if strings.ContainsAny(s.To+s.From, "*> \t\r\n\x00\x7f") {
			t.Fatalf("accepted %q with a wildcard, space or control character: %+v", subject, s)
		}
		if back := s.String(); back != subject {
			// A token holding '.'s cannot be: the only change Token/CodeFromToken
			// may make is none, since '_' maps to '.' and back.
			t.Fatalf("ParseSubject(%q) = %+v, which formats as %q", subject, s, back)
		}
	})
}

func TestMayOutliveDedup(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		age  time.Duration
		want bool
	}{
		{0, false},
		{-time.Hour, false}, // created "later": a clock ahead
		{record.DuplicateWindow/4 - time.Second, false},
		{record.DuplicateWindow / 4, true},
		{record.DuplicateWindow, true},
		{48 * time.Hour, true},
	} {
		if got := record.MayOutliveDedup(now.Add(-c.age), now); got != c.want {
			t.Errorf("created %s before: %v, want %v", c.age, got, c.want)
		}
	}
}
