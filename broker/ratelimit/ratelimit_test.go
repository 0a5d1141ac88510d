package ratelimit_test

import (
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/ratelimit"
)

func TestTake(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	type step struct {
		at   time.Duration // after t0
		key  string
		ok   bool
		wait time.Duration
	}
	for _, tc := range []struct {
		name  string
		rate  ratelimit.Rate
		steps []step
	}{
		{"burst then refill", ratelimit.Rate{PerSecond: 2, Burst: 3}, []step{
			{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0},
			{0, "a", false, 500 * time.Millisecond},
			{250 * time.Millisecond, "a", false, 250 * time.Millisecond},
			{500 * time.Millisecond, "a", true, 0},
		}},
		{"keys are apart", ratelimit.Rate{PerSecond: 1, Burst: 1}, []step{
			{0, "a", true, 0}, {0, "a", false, time.Second}, {0, "b", true, 0},
		}},
		{"refill stops at the burst", ratelimit.Rate{PerSecond: 1, Burst: 2}, []step{
			{0, "a", true, 0}, {time.Hour, "a", true, 0}, {time.Hour, "a", true, 0}, {time.Hour, "a", false, time.Second},
		}},
		{"no rate is no limit", ratelimit.Rate{PerSecond: 0, Burst: 0}, []step{
			{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0},
		}},
		{"negative rate is no limit", ratelimit.Rate{PerSecond: -1}, []step{
			{0, "a", true, 0}, {0, "a", true, 0},
		}},
		{"a burst below one is one", ratelimit.Rate{PerSecond: 0.5, Burst: 0.5}, []step{
			{0, "a", true, 0}, {0, "a", false, 2 * time.Second}, {2 * time.Second, "a", true, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l ratelimit.Limiter
			for i, s := range tc.steps {
				wait, ok := l.Take(s.key, tc.rate, t0.Add(s.at))
				if ok != s.ok || wait != s.wait {
					t.Fatalf("step %d: Take(%s) = %s, %v; want %s, %v", i, s.key, wait, ok, s.wait, s.ok)
				}
			}
		})
	}
}

func TestMaxKeysDropsFullBuckets(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	r := ratelimit.Rate{PerSecond: 1, Burst: 1}
	l := ratelimit.Limiter{MaxKeys: 2}
	l.Take("a", r, t0)
	l.Take("b", r, t0)
	// a and b are empty: nothing may be dropped, the map grows.
	l.Take("c", r, t0)
	if n := l.Len(); n != 3 {
		t.Fatalf("%d buckets, want 3", n)
	}
	// A second later all are full again: a new key drops them.
	l.Take("d", r, t0.Add(time.Second))
	if n := l.Len(); n != 1 {
		t.Fatalf("%d buckets, want 1", n)
	}
	// An emptied bucket is kept: "d" is still refused.
	if _, ok := l.Take("d", r, t0.Add(time.Second)); ok {
		t.Fatal("d allowed twice within its burst")
	}
}
