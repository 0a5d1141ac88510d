package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// longDuration is a flag value for periods counted in days or years as
// well as Go durations: "10y", "7d", "36h", "-1" (off). A year is 365
// days, a day 24 hours.
type longDuration time.Duration

func (d *longDuration) String() string {
	v := time.Duration(*d)
	switch {
	case v != 0 && v%(365*24*time.Hour) == 0:
		return strconv.FormatInt(int64(v/(365*24*time.Hour)), 10) + "y"
	case v != 0 && v%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return v.String()
}

func (d *longDuration) Set(s string) error {
	v, err := parseLongDuration(s)
	if err != nil {
		return err
	}
	*d = longDuration(v)
	return nil
}

func (d *longDuration) Type() string { return "duration" }

func parseLongDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	for suffix, unit := range map[string]time.Duration{"y": 365 * 24 * time.Hour, "d": 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 32)
			if limit := int64(200 * 365 * 24 * time.Hour / unit); err == nil && (v > limit || v < -limit) {
				err = strconv.ErrRange // beyond two hundred years: a typo, and near int64 nanoseconds
			}
			if err != nil {
				return 0, fmt.Errorf("%q: want a whole number of %s (e.g. 10y, 7d) or a duration (36h)", s, map[string]string{"y": "years", "d": "days"}[suffix])
			}
			return time.Duration(v) * unit, nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n <= 0 {
		return time.Duration(n), nil // 0 or negative: off
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a duration such as 10y, 7d, 36h or 90m", s)
	}
	return v, nil
}
