package edxml

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Vietnam is the zone of every edXML date and timestamp: UTC+7 all year
// round. A fixed zone, so that nothing depends on the tzdata installed.
var Vietnam = time.FixedZone("ICT", 7*60*60)

// Layouts of the standard forms.
const (
	DateLayout      = "2006/01/02"
	TimestampLayout = "2006/01/02 15:04:05"
)

// Date is an edXML calendar date (yyyy/MM/dd): a day in Vietnam, without a
// time. The zero Date stands for an empty element.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// IsZero reports whether d is the zero Date (an empty element).
func (d Date) IsZero() bool { return d == Date{} }

// String returns d in edXML form, yyyy/MM/dd, or "" for the zero Date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d/%02d/%02d", d.Year, int(d.Month), d.Day)
}

// ISO returns d as YYYY-MM-DD (the form of envelope.Document dates), or ""
// for the zero Date.
func (d Date) ISO() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day)
}

// Time returns midnight of d in Vietnam.
func (d Date) Time() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, Vietnam) }

// ParseDate reads an edXML date. The standard form is yyyy/MM/dd; yyyy/M/d,
// yyyy-MM-dd and a date followed by a time are accepted too. An empty string
// gives the zero Date.
func ParseDate(s string) (Date, error) {
	d, _, err := parseDate(s)
	return d, err
}

// parseDate also reports whether s was in the standard form.
func parseDate(s string) (Date, bool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Date{}, true, nil
	}
	bad := func() (Date, bool, error) {
		return Date{}, false, fmt.Errorf("%w %q: want yyyy/MM/dd", ErrBadDate, s)
	}
	rest := s
	canonical := true
	if i := strings.IndexAny(rest, " T"); i >= 0 {
		rest, canonical = rest[:i], false
	}
	sep := "/"
	if strings.Contains(rest, "-") {
		sep, canonical = "-", false
	}
	parts := strings.Split(rest, sep)
	if len(parts) != 3 || len(parts[0]) != 4 || len(parts[1]) < 1 || len(parts[1]) > 2 || len(parts[2]) < 1 || len(parts[2]) > 2 {
		return bad()
	}
	var n [3]int
	for i, p := range parts {
		for _, c := range p {
			if c < '0' || c > '9' {
				return bad()
			}
		}
		n[i], _ = strconv.Atoi(p)
	}
	if len(parts[1]) != 2 || len(parts[2]) != 2 {
		canonical = false
	}
	d := Date{Year: n[0], Month: time.Month(n[1]), Day: n[2]}
	t := time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC)
	if d.Year < 1 || t.Year() != d.Year || t.Month() != d.Month || t.Day() != d.Day {
		return Date{}, false, fmt.Errorf("%w %q: no such day", ErrBadDate, s)
	}
	return d, canonical, nil
}

// ParseTimestamp reads an edXML timestamp, yyyy/MM/dd HH:mm:ss in Vietnam
// time. Also accepted: yyyy-MM-dd HH:mm:ss, yyyy-MM-ddTHH:mm:ss (Vietnam
// time unless a zone is given, as in RFC 3339) and a bare date (midnight).
// An empty string gives the zero time. The result is in the Vietnam zone.
func ParseTimestamp(s string) (time.Time, error) {
	t, _, err := parseTimestamp(s)
	return t, err
}

var timestampLayouts = []string{
	"2006/1/2 15:04:05",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006/1/2 15:04",
	"2006-01-02 15:04",
}

func parseTimestamp(s string) (time.Time, bool, error) {
	t, canonical, err := parseTimestamp1(s)
	// Shifted into Vietnam time, a year must still have four digits, or
	// it could not be written back.
	if err == nil && !t.IsZero() && (t.Year() < 1 || t.Year() > 9999) {
		return time.Time{}, false, fmt.Errorf("%w %q: year out of range", ErrBadDate, strings.TrimSpace(s))
	}
	return t, canonical, err
}

func parseTimestamp1(s string) (time.Time, bool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, true, nil
	}
	if t, err := time.ParseInLocation(TimestampLayout, s, Vietnam); err == nil {
		return t, len(s) == len(TimestampLayout), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.In(Vietnam), false, nil
	}
	for _, layout := range timestampLayouts {
		if t, err := time.ParseInLocation(layout, s, Vietnam); err == nil {
			return t, false, nil
		}
	}
	if !strings.ContainsAny(s, " T:") {
		if d, _, err := parseDate(s); err == nil {
			return d.Time(), false, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("%w %q: want yyyy/MM/dd HH:mm:ss (Vietnam time)", ErrBadDate, s)
}

// FormatTimestamp writes t in edXML form, in Vietnam time; "" for the zero
// time.
func FormatTimestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(Vietnam).Format(TimestampLayout)
}
