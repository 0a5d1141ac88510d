package bus

import (
	"context"
	"errors"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Tracker internals for black-box tests.

// TrackerVersionKey is the metadata key of the tracker consumer's rules
// version; TrackerSweepKey is set while an attachment access sweep is due.
const (
	TrackerVersionKey = metaTrackerVersion
	TrackerSweepKey   = metaTrackerSweep
)

// SetSweepInterval sets how often the attachment access sweep checks the
// rebuild's progress; it returns a func restoring it.
func SetSweepInterval(d time.Duration) func() {
	old := sweepInterval
	sweepInterval = d
	return func() { sweepInterval = old }
}

// QuarantineRequest is a decoded quarantine-service request, for the fuzz
// target of the black-box tests.
type QuarantineRequest struct {
	Op, Agency, Reason string
	Seq, Deliveries    uint64
}

// DecodeQuarantineRequest exposes the service's decoding of a request: the
// request, or the error code it is refused with.
func DecodeQuarantineRequest(subject, reply string, h nats.Header, body []byte) (req QuarantineRequest, replyOK bool, code string) {
	r, err := decodeQuarantineRequest(subject, h, body)
	replyOK = record.ReplyAllowed(reply, subject[min(len(subject), len(record.QuarantineServicePrefix)):])
	if err != nil {
		var se *record.ServiceError
		if errors.As(err, &se) {
			return req, replyOK, se.Code
		}
		return req, replyOK, "untyped: " + err.Error()
	}
	return QuarantineRequest{Op: r.op, Agency: r.agency, Reason: r.reason, Seq: r.seq, Deliveries: r.deliveries}, replyOK, ""
}

// DecodeTrackRequest parses a tracking service request (for fuzzing).
func DecodeTrackRequest(subject string, data []byte) (agency, op string, err error) {
	agency, op, _, err = decodeTrackRequest(subject, data)
	return agency, op, err
}

// RateJudging tells whether this service's process judges the publish
// rate now (it holds the gate's lease).
func (s *Service) RateJudging() bool { return s.gate != nil && s.gate.leading.Load() }

// RateVerdict is the rate verdict this service gives for record sequence
// seq, asking the judging process when it is not that process.
func (s *Service) RateVerdict(ctx context.Context, seq uint64) (refused bool, err error) {
	j, err := s.gate.judgement(ctx, seq)
	return j.refused, err
}

// RefusalOr is how the system service answers a failed directory read.
var RefusalOr = refusalOr

// CopyMayBePending is the tracker's judgement of a status stored at seq
// and delivered n times, about envelope of from reporter to sender, whose
// pair is not tracked yet (tracker_order.go).
func (t *Tracker) CopyMayBePending(ctx context.Context, seq, n uint64, sender, reporter, of string) bool {
	return t.copyMayBePending(ctx, &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: seq}, NumDelivered: n}, 0, false, sender, reporter, of)
}

// CopyPendingDeliveries bounds the looks at a status ahead of its copy.
var CopyPendingDeliveries = copyPendingDeliveries

// GateJudgedTo is the last record sequence the service's publish-rate gate
// judged.
func GateJudgedTo(s *Service) uint64 { return s.gate.judgedTo() }

// OnStatusUntracked makes the tracker call fn when a status's pair was
// read and not found, before judging whether it is an orphan, until the
// test ends.
func OnStatusUntracked(t interface{ Cleanup(func()) }, fn func(seq uint64)) {
	testHookStatusUntracked = fn
	t.Cleanup(func() { testHookStatusUntracked = nil })
}

// SetupTransient tells the failures Setup asks again after.
var SetupTransient = setupTransient
