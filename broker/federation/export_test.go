package federation

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// Internals for the tests in package federation_test.
var (
	AppendHop    = appendHop
	RecordedTime = recordedTime
	ParseChunk   = parseChunk
	RetryDelay   = retryDelay
)

// ParseFedSubject parses a federation subject of prefix ("axis.fedout.",
// "axis.fedrelay.") into dest, origin, kind, a, b.
func ParseFedSubject(prefix, subject string) (dest, origin, kind, a, b string, err error) {
	f, err := parseFedSubject(prefix, subject)
	return f.Dest, f.Origin, f.Kind, f.A, f.B, err
}

// SubjectOf builds the subject ParseFedSubject parses.
func SubjectOf(prefix, dest, origin, kind, a, b string) string {
	return fedSubject{Dest: dest, Origin: origin, Kind: kind, A: a, B: b}.subject(prefix)
}

// QuarantineFromLink writes the quarantine entry the national writes when
// it refuses m, pulled from member's OutStream over its link.
func (s *Service) QuarantineFromLink(ctx context.Context, member string, m *jetstream.RawStreamMsg, cause error) error {
	st := &loopState{stream: OutStream, durable: uplinkConsumer, bus: member}
	meta := &jetstream.MsgMetadata{Stream: OutStream, Consumer: uplinkConsumer, Sequence: jetstream.SequencePair{Stream: m.Sequence, Consumer: m.Sequence}, NumDelivered: 1}
	return s.quarantine(ctx, loopName(OutStream, uplinkConsumer, member), st, storedMsg{m}, meta, cause)
}
