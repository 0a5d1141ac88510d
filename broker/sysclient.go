package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The client side of the bus's system service (record.SystemServicePrefix):
// a document system's client publishes and reads received markers through
// the bus, which checks each request against the directory.

// sysKV is the received-markers bucket as a system's client reaches it:
// through the bus's system service.
type sysKV struct {
	c  *Client
	id string
}

func (k *sysKV) request(ctx context.Context, op, key string, value []byte) (*nats.Msg, error) {
	m := nats.NewMsg(record.SystemServiceSubject(k.id, op))
	m.Header.Set(record.HeaderSysKey, key)
	m.Data = value
	return k.c.systemRequest(ctx, m)
}

func (k *sysKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	a, err := k.request(ctx, record.SysOpMarkerGet, key, nil)
	if err != nil {
		return nil, err
	}
	return &kvEntry{bucket: record.ReceivedBucket, key: key, value: a.Data, op: jetstream.KeyValuePut}, nil
}

func (k *sysKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	_, err := k.request(ctx, record.SysOpMarkerPut, key, value)
	return 0, err
}

// systemRequest sends a request to the bus's system service and turns an
// error answer into an error (not-found into jetstream.ErrKeyNotFound).
func (c *Client) systemRequest(ctx context.Context, m *nats.Msg) (*nats.Msg, error) {
	rctx, cancel := context.WithTimeout(ctx, c.opts.timeout)
	defer cancel()
	a, err := c.nc.RequestMsgWithContext(rctx, m)
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("%w: the bus's system service is not running (is 'docaxis serve' up?)", err)
	}
	if err != nil {
		return nil, c.explain(err)
	}
	if err := systemAnswerError(a); err != nil {
		return nil, err
	}
	return a, nil
}

// systemAnswerError turns an error answer of the system service into the
// client's error: not found into jetstream.ErrKeyNotFound, a refusal into
// ErrNotServed or ErrPermission, and "unavailable" (the service could not
// read the bus now) into a failure the client asks again through.
func systemAnswerError(a *nats.Msg) error {
	text := record.Cut(string(a.Data), 1024)
	switch code := a.Header.Get(record.HeaderError); code {
	case "":
		return nil
	case record.CodeNotFound:
		return fmt.Errorf("%w: %s", jetstream.ErrKeyNotFound, text)
	case record.CodeForbidden:
		if strings.Contains(string(a.Data), ErrNotServed.Error()) {
			return fmt.Errorf("%w: %s", ErrNotServed, text)
		}
		return fmt.Errorf("%w: %s", ErrPermission, text)
	case record.CodeUnavailable:
		return fmt.Errorf("the bus's system service: %w: %s", failover.ErrUnavailable, text)
	case record.CodeIDTaken:
		return answerError{text: text, sentinel: ErrIDTaken}
	default:
		return fmt.Errorf("the bus's system service: %s: %s", code, text)
	}
}

// publishRecord publishes one message to the record: directly, or for a
// system's client through the bus's system service.
func (c *Client) publishRecord(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	id := SystemOfActor(c.opts.agency)
	if id == "" {
		return c.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(record.Stream))
	}
	m := nats.NewMsg(record.SystemServiceSubject(id, record.SysOpPublish))
	m.Header.Set(record.HeaderSysSubject, msg.Subject)
	m.Header.Set(jetstream.MsgIDHeader, msg.Header.Get(jetstream.MsgIDHeader))
	m.Data = msg.Data
	a, err := c.systemRequest(ctx, m)
	if err != nil {
		return nil, err
	}
	var ack jetstream.PubAck
	if err := json.Unmarshal(a.Data, &ack); err != nil {
		return nil, fmt.Errorf("the bus's system service: bad answer to a publish: %w", err)
	}
	return &ack, nil
}

// publishRecordRetry is publishRecord through a failover, with the same
// message id (deduplicated by the record).
func (c *Client) publishRecordRetry(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	return retry(ctx, c, func(ctx context.Context) (*jetstream.PubAck, error) {
		return c.publishRecord(ctx, msg)
	})
}
