package vxp

import (
	"fmt"
	"testing"

	"github.com/docaxis/docaxis/broker"
)

// A publish rate over the bus's is a refusal for now: it answers as a
// temporary failure, which the call asked again later passes, not as too
// large, which it never passes.
func TestClassifyLimits(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
	}{
		{fmt.Errorf("send: %w", broker.ErrRateLimited), CodeInternal},
		{fmt.Errorf("send: %w: 12 recipients, at most 10", broker.ErrLimit), CodeTooLarge},
		{fmt.Errorf("send: %w", broker.ErrUnknownAgency), CodeNotFound},
	} {
		if got := classify("sendEdoc", tc.err); got.Code != tc.code {
			t.Errorf("%v: code %s, want %s", tc.err, got.Code, tc.code)
		}
	}
}
