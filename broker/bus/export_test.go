package bus

import "time"

// Tracker internals for black-box tests.

// TrackerVersionKey is the metadata key of the tracker consumer's rules
// version; TrackerSweepKey is set while an attachment access sweep is due.
const (
	TrackerVersionKey = metaTrackerVersion
	TrackerSweepKey   = metaTrackerSweep
)

// SetSweepInterval sets how often the attachment access sweep checks the
// rebuild's progress; it returns a func restoring it.
func SetSweepInterval(d time.Duration) func() {
	old := sweepInterval
	sweepInterval = d
	return func() { sweepInterval = old }
}
