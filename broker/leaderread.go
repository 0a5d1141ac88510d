package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reads through a stream's leader. On a cluster a direct get (what
// jetstream.KeyValue.Get and every read of a stream with allow_direct use)
// is answered by any replica, and a consumer of one replica (an ordered
// consumer is R1, placed on a random peer) reads that replica's store: a
// replica still catching up after a restart answers from what it has, so
// "no message" from it does not mean the record has none. The stream
// message API ($JS.API.STREAM.MSG.GET) is answered by the leader alone,
// which has applied everything the cluster acknowledged before it leads.

// leaderGetRequest is nats-server's JSApiMsgGetRequest.
type leaderGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
}

// leaderGetResponse is nats-server's JSApiMsgGetResponse.
type leaderGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *struct {
		Subject  string    `json:"subject"`
		Sequence uint64    `json:"seq"`
		Header   []byte    `json:"hdrs,omitempty"`
		Data     []byte    `json:"data,omitempty"`
		Time     time.Time `json:"time"`
	} `json:"message,omitempty"`
}

// jsErrNoMessageFound is the API error code of a get that matched nothing.
const jsErrNoMessageFound jetstream.ErrorCode = 10037

// leaderGet reads one message of stream through its leader: by sequence,
// the last on a subject filter, or the next at or after req.Seq on one.
// Nothing matching is jetstream.ErrMsgNotFound.
func (c *Client) leaderGet(ctx context.Context, stream string, req leaderGetRequest) (*jetstream.RawStreamMsg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.timeout)
		defer cancel()
	}
	m, err := leaderGet(ctx, c.nc, stream, req)
	return m, c.explain(err)
}

func leaderGet(ctx context.Context, nc *nats.Conn, stream string, req leaderGetRequest) (*jetstream.RawStreamMsg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	subject := "$JS.API.STREAM.MSG.GET." + stream
	msg, err := nc.RequestWithContext(ctx, subject, body)
	if err != nil {
		return nil, fmt.Errorf("read %s from its leader: %w", stream, err)
	}
	return decodeLeaderGet(stream, msg.Data)
}

// decodeLeaderGet decodes the leader's answer to a message get.
func decodeLeaderGet(stream string, data []byte) (*jetstream.RawStreamMsg, error) {
	var resp leaderGetResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, fmt.Errorf("read %s from its leader: undecodable answer: %w", stream, err)
	}
	if resp.Error != nil {
		if resp.Error.ErrorCode == jsErrNoMessageFound {
			return nil, jetstream.ErrMsgNotFound
		}
		return nil, fmt.Errorf("read %s from its leader: %w", stream, resp.Error)
	}
	if resp.Message == nil {
		return nil, fmt.Errorf("read %s from its leader: %w", stream, jetstream.ErrInvalidJetStreamResponse)
	}
	m := resp.Message
	var hdr nats.Header
	if len(m.Header) > 0 {
		var err error
		if hdr, err = nats.DecodeHeadersMsg(m.Header); err != nil {
			return nil, fmt.Errorf("read %s #%d from its leader: headers: %w", stream, m.Sequence, err)
		}
	}
	return &jetstream.RawStreamMsg{Subject: m.Subject, Sequence: m.Sequence, Header: hdr, Data: m.Data, Time: m.Time}, nil
}

// leaderKey reads the value of key in bucket through the bucket's
// leader; found is false when the key has no value (never put, deleted or
// purged).
func (c *Client) leaderKey(ctx context.Context, bucket, key string) (value []byte, found bool, err error) {
	value, _, found, err = leaderValue(c.leaderGet(ctx, record.KVStream(bucket), lastOfKey(bucket, key)))
	return value, found, err
}

// LeaderKey reads the value of key in bucket, and its revision, through
// the bucket's leader, on nc: what the cluster acknowledged, where a
// jetstream.KeyValue.Get may be answered by a replica still catching up.
// found is false when the key has no value (never put, deleted or
// purged). ctx must have a deadline.
func LeaderKey(ctx context.Context, nc *nats.Conn, bucket, key string) (value []byte, revision uint64, found bool, err error) {
	return leaderValue(leaderGet(ctx, nc, record.KVStream(bucket), lastOfKey(bucket, key)))
}

func lastOfKey(bucket, key string) leaderGetRequest {
	return leaderGetRequest{LastFor: record.KVSubject(bucket, key)}
}

// leaderValue is the value of a key and its revision, from the last
// message on its subject as a leader's get answered it.
func leaderValue(m *jetstream.RawStreamMsg, err error) (value []byte, revision uint64, found bool, _ error) {
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, err
	}
	if op := m.Header.Get("KV-Operation"); op != "" || len(m.Data) == 0 {
		return nil, m.Sequence, false, nil
	}
	return m.Data, m.Sequence, true, nil
}

// LeaderCheck is a record.KeyCheck that reads bucket's keys through its
// leader on nc, each within timeout.
func LeaderCheck(nc *nats.Conn, bucket string, timeout time.Duration) record.KeyCheck {
	return func(ctx context.Context, key string) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		_, _, found, err := LeaderKey(ctx, nc, bucket, key)
		return found, err
	}
}
