package record_test

import (
	"testing"

	"github.com/docaxis/docaxis/broker/record"
)

// The federation's stream and bucket names are stored state: an existing
// bus home finds its federation by them, so they never change.
func TestFederationNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{record.FedOutStream, "AXIS_FED_OUT"},
		{record.FedRelayStream, "AXIS_FED_RELAY"},
		{record.FedInStream, "AXIS_FED_IN"},
		{record.FedDirStream, "AXIS_FED_DIR"},
		{record.FedFromStream("HN"), "AXIS_FED_FROM_HN"},
		{record.FedInflightBucket, "AXIS_FED_INFLIGHT"},
	} {
		if tc.got != tc.want {
			t.Errorf("name %q, want %q", tc.got, tc.want)
		}
	}
}
