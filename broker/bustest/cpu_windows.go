//go:build windows

package bustest

import (
	"testing"
	"time"

	"golang.org/x/sys/windows"
)

// CPU is the process's user and system CPU time so far (see cpu_unix.go).
func CPU(tb testing.TB) time.Duration {
	var created, exited, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(windows.CurrentProcess(), &created, &exited, &kernel, &user); err != nil {
		tb.Fatalf("read the process's CPU time: %v", err)
	}
	// Filetimes count 100 ns intervals.
	ticks := func(f windows.Filetime) int64 { return int64(f.HighDateTime)<<32 | int64(f.LowDateTime) }
	return time.Duration((ticks(kernel) + ticks(user)) * 100)
}
