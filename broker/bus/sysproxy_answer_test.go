package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
)

// The system service refuses a system only on what the directory says; a
// directory it cannot read now (a failover) is no refusal.
func TestSystemServiceRefusesOnlyOnTheDirectory(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		refused error
		want    string
	}{
		{"agency not in the directory", fmt.Errorf("%w X: not registered", broker.ErrUnknownAgency), broker.ErrUnknownAgency, record.CodeForbidden},
		{"system not registered", fmt.Errorf("%w S: removed", broker.ErrUnknownSystem), broker.ErrUnknownSystem, record.CodeForbidden},
		{"directory read timed out", fmt.Errorf("look up agency X: %w", context.DeadlineExceeded), broker.ErrUnknownAgency, record.CodeUnavailable},
		{"no leader", fmt.Errorf("look up agency X: %w", nats.ErrNoResponders), broker.ErrUnknownAgency, record.CodeUnavailable},
		{"system read timed out", fmt.Errorf("look up system S: %w", context.DeadlineExceeded), broker.ErrUnknownSystem, record.CodeUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var se *record.ServiceError
			if err := bus.RefusalOr(broker.DirectoryRead(tc.err, tc.refused)); !errors.As(err, &se) || se.Code != tc.want {
				t.Fatalf("answer %v, want code %s", err, tc.want)
			}
		})
	}
}
