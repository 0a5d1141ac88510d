// Package audittest tampers with a bus's audit record the way someone
// with write access to its store would, for tests of what replay and
// verification then report.
package audittest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// CutRecord deletes record seq together with its link: the record from
// the record stream, and the link by writing the audit stream again
// without it (no other trace of the cut is left in the stream). The
// chainer must be stopped.
func CutRecord(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	rs, err := js.Stream(ctx, record.Stream)
	if err != nil {
		return fmt.Errorf("audittest: %w", err)
	}
	if err := rs.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("audittest: delete record %d: %w", seq, err)
	}
	as, err := js.Stream(ctx, audit.StreamName)
	if err != nil {
		return fmt.Errorf("audittest: %w", err)
	}
	info, err := as.Info(ctx)
	if err != nil {
		return fmt.Errorf("audittest: %w", err)
	}
	var msgs []*nats.Msg
	cut := false
	for s := info.State.FirstSeq; s <= info.State.LastSeq && info.State.Msgs > 0; s++ {
		m, err := as.GetMsg(ctx, s)
		if err != nil {
			return fmt.Errorf("audittest: read %s #%d: %w", audit.StreamName, s, err)
		}
		if m.Subject == audit.LinkSubject {
			var l audit.Link
			if err := json.Unmarshal(m.Data, &l); err != nil {
				return fmt.Errorf("audittest: link %s #%d: %w", audit.StreamName, s, err)
			}
			if l.Seq == seq {
				cut = true
				continue
			}
		}
		// Written again as it was, without the expectations it was
		// first published with.
		h := nats.Header{}
		for k, v := range m.Header {
			if !strings.HasPrefix(k, "Nats-Expected") {
				h[k] = v
			}
		}
		msgs = append(msgs, &nats.Msg{Subject: m.Subject, Header: h, Data: m.Data})
	}
	if !cut {
		return fmt.Errorf("audittest: no link of record %d", seq)
	}
	if err := js.DeleteStream(ctx, audit.StreamName); err != nil {
		return fmt.Errorf("audittest: %w", err)
	}
	if _, err := js.CreateStream(ctx, info.Config); err != nil {
		return fmt.Errorf("audittest: %w", err)
	}
	for _, m := range msgs {
		if _, err := js.PublishMsg(ctx, m); err != nil {
			return fmt.Errorf("audittest: write %s again: %w", m.Subject, err)
		}
	}
	return nil
}
