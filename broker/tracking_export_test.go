package broker

// Tracking internals for black-box tests.

// SetTrackListLimit sets the page size agency clients ask the tracking
// service for (0: the service's default); it returns a func restoring it.
func SetTrackListLimit(n int) func() {
	old := trackListLimit
	trackListLimit = n
	return func() { trackListLimit = old }
}
