package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// Hops returns the federation trace of a record: the buses a copy that
// came from another bus crossed, first hop first, each entry's signature
// and certificate checked against the reader's trust (the roots this bus
// approved) and chained to the one before; nil for a record that never
// crossed a bus. The federation service checked each entry against the
// CA of its own bus when the copy arrived; this re-checks what an auditor
// can from the record alone.
func (r *Reader) Hops(ctx context.Context, rec *Record) ([]federation.Hop, error) {
	s, err := r.js.Stream(ctx, RecordStream)
	if err != nil {
		return nil, fmt.Errorf("trace of record %d: %w", rec.Seq, err)
	}
	m, err := s.GetMsg(ctx, rec.Seq)
	if err != nil {
		return nil, fmt.Errorf("trace of record %d: %w", rec.Seq, err)
	}
	if len(m.Header.Values(federation.HeaderTrace)) == 0 {
		return nil, nil
	}
	trust := r.cfg.Verifier.Trust
	return federation.VerifyTrace(m.Header, m.Data, m.Header.Get(jetstream.MsgIDHeader), func(string) *signing.Trust { return trust })
}

// FormatHops renders a trace for the replay listing, e.g.
// "HN 10:02:03.104 ✓ → VN 10:02:03.160 ✓ → DN 10:02:03.201 ✓".
func FormatHops(hops []federation.Hop) string {
	parts := make([]string, len(hops))
	for i, h := range hops {
		mark := "✓"
		if !h.Verified {
			mark = "✗"
		}
		parts[i] = h.Bus + " " + h.At.Local().Format(time.TimeOnly+".000") + " " + mark
	}
	return strings.Join(parts, " → ")
}
