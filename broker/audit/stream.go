package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Names on JetStream. The audit stream is separate from AXIS so that its
// retention and access can be set on their own, and so that the chain never
// links itself.
const (
	// RecordStream is the stream the chain covers.
	RecordStream = record.Stream
	// StreamName keeps links and checkpoints, in that order of writing.
	StreamName        = record.AuditStream
	LinkSubject       = "axis.audit.link"
	CheckpointSubject = "axis.audit.checkpoint"
	// RequestSubject is a core NATS request to the chainer: link everything
	// stored so far, sign a checkpoint and reply with it (exports use it so
	// that the range they carry is covered).
	RequestSubject = "axis.audit.request.checkpoint"

	// HeaderLastCheckpoint, on a link, is the audit-stream sequence of the
	// last checkpoint written before it (0: none). It lets an export find
	// the checkpoint that anchors a range without scanning.
	HeaderLastCheckpoint = "Docaxis-Audit-Last-Checkpoint"
	// HeaderHeadSeq, on a checkpoint, is the audit-stream sequence of its
	// head link.
	HeaderHeadSeq = "Docaxis-Audit-Head-Seq"
)

// StreamConfig returns the audit stream's configuration.
func StreamConfig(retention time.Duration, replicas int) jetstream.StreamConfig {
	if retention == 0 {
		retention = 10 * 365 * 24 * time.Hour
	}
	if replicas == 0 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "docaxis audit chain: one link per record of AXIS, signed checkpoints",
		Subjects:    []string{LinkSubject, CheckpointSubject},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      retention,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  2 * time.Hour,
		// History must not be rewritten: no message deletes or purges
		// through the API.
		DenyDelete: true,
		DenyPurge:  true,
		Discard:    jetstream.DiscardOld,
	}
}

func auditStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("%w: stream %s not found (is 'docaxis serve' running its chainer?)", ErrNoChain, StreamName)
	}
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", StreamName, err)
	}
	return s, nil
}

func decodeLink(m *jetstream.RawStreamMsg) (Link, error) {
	var l Link
	if err := json.Unmarshal(m.Data, &l); err != nil {
		return l, fmt.Errorf("decode link at %s seq %d: %w", StreamName, m.Sequence, err)
	}
	return l, nil
}

func headerUint(h interface{ Get(string) string }, name string) uint64 {
	n, _ := strconv.ParseUint(h.Get(name), 10, 64)
	return n
}

// lastMsg returns the last message on subject, nil when there is none.
func lastMsg(ctx context.Context, s jetstream.Stream, subject string) (*jetstream.RawStreamMsg, error) {
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read last %s of %s: %w", subject, StreamName, err)
	}
	return m, nil
}

// consumerPrefix names an ordered consumer uniquely: reusing a name would
// update a consumer left by an earlier reader instead of making a new one.
func consumerPrefix(what string) string { return what + "_" + nuid.Next() }
