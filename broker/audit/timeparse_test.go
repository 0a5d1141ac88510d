package audit_test

import (
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
)

func TestParseTime(t *testing.T) {
	hcm := time.FixedZone("ICT", 7*3600)
	now := time.Date(2025, 3, 10, 12, 0, 0, 0, hcm)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{"", time.Time{}, false},
		{"now", now, false},
		{"2025-03-01T08:00:00+07:00", time.Date(2025, 3, 1, 8, 0, 0, 0, hcm), false},
		{"2025-03-01T01:00:00.5Z", time.Date(2025, 3, 1, 1, 0, 0, 5e8, time.UTC), false},
		{"2025-03-01", time.Date(2025, 3, 1, 0, 0, 0, 0, hcm), false},
		{"2025-03-01 08:30", time.Date(2025, 3, 1, 8, 30, 0, 0, hcm), false},
		{"24h", now.Add(-24 * time.Hour), false},
		{"90m", now.Add(-90 * time.Minute), false},
		{"-1h", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"2025-13-01", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := audit.ParseTime(tt.in, now)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseTime(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
