package broker_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/failover"
	"github.com/nats-io/nats.go"
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

// Served judges a directory read: the directory's no is a refusal, a read
// that failed is not.
func TestServed(t *testing.T) {
	served := &broker.Agency{Code: ngheAn, System: "sys-a"}
	for _, tc := range []struct {
		name        string
		a           *broker.Agency
		err         error
		want        error
		unavailable bool
	}{
		{"served", served, nil, nil, false},
		{"another system's", &broker.Agency{Code: ngheAn, System: "sys-b"}, nil, broker.ErrNotServed, false},
		{"deleted", &broker.Agency{Code: ngheAn, System: "sys-a", State: broker.StateDeleted}, nil, broker.ErrInactive, false},
		{"not in the directory", nil, fmt.Errorf("look up %s: %w", ngheAn, broker.ErrUnknownAgency), broker.ErrNotServed, false},
		{"no leader", nil, fmt.Errorf("read agency %s: %w", ngheAn, nats.ErrNoResponders), nats.ErrNoResponders, true},
		{"timed out", nil, context.DeadlineExceeded, context.DeadlineExceeded, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := broker.Served(tc.a, tc.err, "sys-a", ngheAn)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("Served = %v, want %v", err, tc.want)
			}
			if got := errors.Is(err, failover.ErrUnavailable); got != tc.unavailable {
				t.Fatalf("Served = %v: unavailable %v, want %v", err, got, tc.unavailable)
			}
			if errors.Is(err, broker.ErrUnknownAgency) {
				t.Fatalf("Served = %v: tells an unknown agency from another system's", err)
			}
		})
	}
}
