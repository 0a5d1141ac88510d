//go:build unix

package bustest

import (
	"syscall"
	"testing"
	"time"
)

// CPU is the process's user and system CPU time so far. Benchmarks report
// it per operation: the bus, its clients and the embedded server share the
// process, and a machine shared with other work distorts it far less than
// wall time.
func CPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("read the process's CPU time: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
