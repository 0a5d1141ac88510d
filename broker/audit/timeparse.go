package audit

import (
	"fmt"
	"strings"
	"time"
)

// ParseTime reads a --since/--until value: RFC 3339 (2025-03-01T08:00:00+07:00),
// a date YYYY-MM-DD (midnight, local time), a date and time without zone
// (local time), "now", or a Go duration such as 24h or 90m meaning that long
// before now.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if s == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("time %q: a duration means that long ago and must not be negative", s)
		}
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2025-03-01T08:00:00+07:00), a date (2025-03-01) or a duration ago (24h)", s)
}
