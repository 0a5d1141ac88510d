package record_test

import (
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/record"
)

func TestJudgedAt(t *testing.T) {
	stored := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	earlier := stored.Add(-time.Hour)
	for _, tc := range []struct {
		name, header, this, sender string
		want                       time.Time
	}{
		{"alone", earlier.Format(time.RFC3339Nano), "", "", stored},
		{"no header", "", "HN", "QN", stored},
		{"sender on this bus", earlier.Format(time.RFC3339Nano), "HN", "HN", stored},
		{"sender's bus unknown", earlier.Format(time.RFC3339Nano), "HN", "", stored},
		{"from another bus", earlier.Format(time.RFC3339Nano), "HN", "QN", earlier},
		{"another bus, offset zone", earlier.In(time.FixedZone("ICT", 7*3600)).Format(time.RFC3339Nano), "HN", "QN", earlier},
		{"after stored", stored.Add(time.Minute).Format(time.RFC3339Nano), "HN", "QN", stored},
		{"garbage", "yesterday", "HN", "QN", stored},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := record.JudgedAt(tc.header, stored, tc.this, tc.sender); !got.Equal(tc.want) {
				t.Errorf("JudgedAt = %v, want %v", got, tc.want)
			}
		})
	}
}
