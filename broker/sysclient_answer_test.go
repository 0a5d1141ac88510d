package broker_test

import (
	"errors"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go/jetstream"
)

// A system's client asks again through "unavailable" and takes only the
// directory's word for a refusal.
func TestSystemAnswerError(t *testing.T) {
	for _, tc := range []struct {
		name      string
		answer    *record.ServiceError
		is        error
		transient bool
	}{
		{"unavailable", record.ServiceErrorf(record.CodeUnavailable, "the directory cannot be read now"), nil, true},
		{"not served", record.ServiceErrorf(record.CodeForbidden, "%v: system S, agency X", broker.ErrNotServed), broker.ErrNotServed, false},
		{"forbidden", record.ServiceErrorf(record.CodeForbidden, "not yours"), broker.ErrPermission, false},
		{"not found", record.ServiceErrorf(record.CodeNotFound, "no marker"), jetstream.ErrKeyNotFound, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := broker.SystemAnswerError(record.ErrorAnswer(tc.answer))
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v: want %v", err, tc.is)
			}
			if got := broker.Transient(err); got != tc.transient {
				t.Errorf("Transient(%v) = %v, want %v", err, got, tc.transient)
			}
		})
	}
}
