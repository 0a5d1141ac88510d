package httpapi

import "time"

// SetEventsPing sets how often an event stream pings and checks its token;
// it returns a func restoring it.
func SetEventsPing(d time.Duration) func() {
	old := eventsPing
	eventsPing = d
	return func() { eventsPing = old }
}
