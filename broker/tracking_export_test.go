package broker

import "time"

// Tracking internals for black-box tests.

// TrackerVersionKey is the metadata key of the tracker consumer's rules
// version; TrackerSweepKey is set while an attachment access sweep is due.
const (
	TrackerVersionKey = metaTrackerVersion
	TrackerSweepKey   = metaTrackerSweep
)

// DecodeTrackRequest parses a tracking service request (for fuzzing).
func DecodeTrackRequest(subject string, data []byte) (agency, op string, err error) {
	agency, op, _, err = decodeTrackRequest(subject, data)
	return agency, op, err
}

// SetTrackListLimit sets the page size agency clients ask the tracking
// service for (0: the service's default); it returns a func restoring it.
func SetTrackListLimit(n int) func() {
	old := trackListLimit
	trackListLimit = n
	return func() { trackListLimit = old }
}

// SetSweepInterval sets how often the attachment access sweep checks the
// rebuild's progress; it returns a func restoring it.
func SetSweepInterval(d time.Duration) func() {
	old := sweepInterval
	sweepInterval = d
	return func() { sweepInterval = old }
}
