package broker

// Tracking internals for black-box tests.

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
