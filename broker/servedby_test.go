package broker_test

import (
	"errors"
	"testing"

	"github.com/docaxis/docaxis/broker"
)

func TestAgencyServedBy(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    broker.Agency
		want error
	}{
		{"served", broker.Agency{Code: ngheAn, System: "sys-a"}, nil},
		{"served, suspended", broker.Agency{Code: ngheAn, System: "sys-a", State: broker.StateSuspended}, nil},
		{"another system's", broker.Agency{Code: ngheAn, System: "sys-b"}, broker.ErrNotServed},
		{"its own keys", broker.Agency{Code: ngheAn}, broker.ErrNotServed},
		{"deleted", broker.Agency{Code: ngheAn, System: "sys-a", State: broker.StateDeleted}, broker.ErrInactive},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.a.ServedBy("sys-a")
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("ServedBy = %v, want %v", err, tc.want)
			}
		})
	}
}
