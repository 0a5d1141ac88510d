package bustest

import (
	"context"
	"testing"
	"time"
)

// Context returns a context that ends after d, so that a call a broken
// test leaves waiting fails instead of hanging, and when the test ends, so
// that nothing started with it outlives the test.
func Context(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Eventually calls fn until it returns nil: what a test waits for on the
// bus (a consumer, a leaf, a directory update) comes in its own time.
// Past within it fails the test with what and fn's last error; within only
// keeps a broken test from hanging, it is not a performance threshold.
func Eventually(t testing.TB, within time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
