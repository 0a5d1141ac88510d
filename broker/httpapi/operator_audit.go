package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The operators' audit trail: who did what from the operator's page
// (retried which quarantined message, with what result), as a stream the
// bus alone writes. Agencies' credentials reach neither its subjects nor
// its API.

// OperatorLogStream is the stream of the operators' audit trail.
const OperatorLogStream = "AXIS_OPLOG"

const operatorLogSubject = "axis.oplog."

// OperatorAction is one entry of the audit trail.
type OperatorAction struct {
	Seq      uint64    `json:"seq"`
	At       time.Time `json:"at"`
	Operator string    `json:"operator"`
	Action   string    `json:"action"` // e.g. "quarantine.retry"
	Target   string    `json:"target"`
	Agency   string    `json:"agency,omitempty"`
	Envelope string    `json:"envelope,omitempty"`
	Result   string    `json:"result"` // "ok" or the error
}

type operatorLog struct {
	js       jetstream.JetStream
	replicas int
	once     sync.Mutex
	stream   jetstream.Stream
}

func (l *operatorLog) open(ctx context.Context) (jetstream.Stream, error) {
	l.once.Lock()
	defer l.once.Unlock()
	if l.stream != nil {
		return l.stream, nil
	}
	s, err := l.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        OperatorLogStream,
		Description: "docaxis operators' audit trail: who did what from the operator's page",
		Subjects:    []string{operatorLogSubject + ">"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      10 * 365 * 24 * time.Hour,
		Storage:     jetstream.FileStorage,
		Replicas:    max(l.replicas, 1),
		Discard:     jetstream.DiscardOld,
		MaxMsgSize:  16 << 10,
	})
	if err != nil {
		return nil, fmt.Errorf("open operators' audit trail %s: %w", OperatorLogStream, err)
	}
	l.stream = s
	return s, nil
}

// write records a on the trail before the caller answers: an action whose
// entry cannot be written is reported as failed to record.
func (l *operatorLog) write(ctx context.Context, a OperatorAction) error {
	if _, err := l.open(ctx); err != nil {
		return err
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if _, err := l.js.Publish(ctx, operatorLogSubject+a.Action, b); err != nil {
		return fmt.Errorf("write operators' audit trail: %w", err)
	}
	return nil
}

// last returns up to n entries, newest first.
func (l *operatorLog) last(ctx context.Context, n int) ([]OperatorAction, error) {
	s, err := l.open(ctx)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read operators' audit trail: %w", err)
	}
	out := []OperatorAction{}
	for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && len(out) < n; seq-- {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read operators' audit trail #%d: %w", seq, err)
		}
		var a OperatorAction
		if json.Unmarshal(m.Data, &a) != nil {
			continue
		}
		a.Seq = seq
		out = append(out, a)
	}
	return out, nil
}
