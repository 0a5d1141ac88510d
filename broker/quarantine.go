package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Quarantined is a message that could not be processed, kept with its
// reason until it is re-driven.
type Quarantined struct {
	Seq        uint64    `json:"seq"` // sequence in the quarantine stream
	Agency     string    `json:"agency"`
	Envelope   string    `json:"envelope,omitempty"`
	Reason     string    `json:"reason"`
	Deliveries int       `json:"deliveries"`
	Subject    string    `json:"subject"`    // where it came from
	OriginSeq  uint64    `json:"origin_seq"` // its sequence in the record
	Time       time.Time `json:"time"`
	Size       int       `json:"size"`
}

// ErrNotQuarantined: nothing in quarantine under that id.
var ErrNotQuarantined = errors.New("no such quarantined message")

// QuarantineList lists quarantined messages, of one agency or all ("").
func (c *Client) QuarantineList(ctx context.Context, agency string) ([]Quarantined, error) {
	filter := quarantinePrefix + ">"
	if agency != "" {
		filter = QuarantineSubject(agency)
	}
	cons, err := c.js.OrderedConsumer(ctx, QuarantineStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	s, err := c.js.Stream(ctx, QuarantineStream)
	if err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	var out []Quarantined
	if info.State.Msgs == 0 {
		return out, nil
	}
	last := info.State.LastSeq
	for {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("read quarantine: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			out = append(out, quarantinedOf(msg.Subject(), msg.Headers(), len(msg.Data()), meta.Sequence.Stream, meta.Timestamp))
			if meta.Sequence.Stream >= last {
				return out, nil
			}
		}
		if n == 0 {
			return out, batch.Error()
		}
	}
}

func quarantinedOf(subject string, h nats.Header, size int, seq uint64, at time.Time) Quarantined {
	q := Quarantined{Seq: seq, Agency: h.Get(HeaderAgency), Envelope: h.Get(HeaderEnvelope), Reason: h.Get(HeaderReason),
		Subject: h.Get(HeaderOriginSubject), Time: at.UTC(), Size: size}
	if q.Agency == "" {
		q.Agency = envelope.CodeFromToken(subject[len(quarantinePrefix):])
	}
	q.Deliveries, _ = strconv.Atoi(h.Get(HeaderDeliveries))
	q.OriginSeq, _ = strconv.ParseUint(h.Get(HeaderOriginSeq), 10, 64)
	return q
}

// QuarantineRetry re-drives a quarantined message after a fix (a trusted
// root added, an attachment restored, the application repaired): the
// original bytes are stored again in the mailbox they came from, and only
// then removed from the quarantine. id is the quarantine sequence or the
// envelope id.
func (c *Client) QuarantineRetry(ctx context.Context, id string) (*Quarantined, error) {
	s, err := c.js.Stream(ctx, QuarantineStream)
	if err != nil {
		return nil, fmt.Errorf("retry %s: %w", id, err)
	}
	var raw *jetstream.RawStreamMsg
	if seq, perr := strconv.ParseUint(id, 10, 64); perr == nil {
		raw, err = s.GetMsg(ctx, seq)
	} else {
		var list []Quarantined
		if list, err = c.QuarantineList(ctx, ""); err == nil {
			for i := len(list) - 1; i >= 0; i-- {
				if list[i].Envelope == id {
					raw, err = s.GetMsg(ctx, list[i].Seq)
					break
				}
			}
		}
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && raw == nil) {
		return nil, fmt.Errorf("%w: %s", ErrNotQuarantined, id)
	}
	if err != nil {
		return nil, fmt.Errorf("retry %s: %w", id, err)
	}
	q := quarantinedOf(raw.Subject, raw.Header, len(raw.Data), raw.Sequence, raw.Time)
	if q.Subject == "" {
		return nil, fmt.Errorf("retry %s: quarantined message has no origin subject", id)
	}
	msg := &nats.Msg{Subject: q.Subject, Data: raw.Data, Header: nats.Header{}}
	// A fresh dedup id: the original one is still within the window.
	msg.Header.Set(jetstream.MsgIDHeader, "retry."+strconv.FormatUint(q.Seq, 10)+"."+envelope.Token(q.Agency))
	if q.Envelope != "" {
		msg.Header.Set(HeaderEnvelope, q.Envelope)
	}
	if _, err := c.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(StreamName)); err != nil {
		return nil, fmt.Errorf("retry %s: re-publish to %s: %w", id, q.Subject, err)
	}
	if err := s.DeleteMsg(ctx, q.Seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return &q, fmt.Errorf("retry %s: re-driven, but not removed from quarantine: %w", id, err)
	}
	return &q, nil
}
