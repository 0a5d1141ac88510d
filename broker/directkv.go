package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reading and writing a bucket key by key, as an agency's credentials
// allow it: DIRECT.GET on the subject of one key, and a JetStream publish
// on it. Nothing here asks for STREAM.INFO (its subjects_filter lists every
// key of a bucket) or creates a consumer, which jetstream.KeyValue does on
// open and on watch.

// keyStore is a bucket read and written by key.
type keyStore interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
}

// directKV reads one bucket through the direct get API of its stream.
type directKV struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	bucket  string
	timeout time.Duration
	// readOnly, when set, is what Put answers: the credentials may read
	// the bucket but not write it.
	readOnly error
}

func (k *directKV) stream() string            { return record.KVStream(k.bucket) }
func (k *directKV) subject(key string) string { return record.KVSubject(k.bucket, key) }

// Get returns the value of key; jetstream.ErrKeyNotFound when it has none
// or was deleted.
func (k *directKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	if !record.ValidKey(key) {
		return nil, fmt.Errorf("read %s key %q: %w", k.bucket, key, jetstream.ErrInvalidKey)
	}
	ctx, cancel := k.bound(ctx)
	defer cancel()
	subj := k.subject(key)
	msg, err := k.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+k.stream()+"."+subj, nil)
	if err != nil {
		return nil, k.fail("read", key, err)
	}
	e, err := decodeDirect(k.bucket, msg)
	if err != nil {
		return nil, k.fail("read", key, err)
	}
	// The key was checked for wildcards; a reply about another subject is
	// not an answer to this question.
	if e.key != key {
		return nil, fmt.Errorf("read %s key %s: the bus answered with key %q", k.bucket, key, e.key)
	}
	if e.op != jetstream.KeyValuePut {
		return nil, fmt.Errorf("read %s key %s: %w", k.bucket, key, jetstream.ErrKeyNotFound)
	}
	return e, nil
}

// Put stores value under key and returns its revision.
func (k *directKV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if k.readOnly != nil {
		return 0, fmt.Errorf("write %s key %s: %w", k.bucket, key, k.readOnly)
	}
	if !record.ValidKey(key) {
		return 0, fmt.Errorf("write %s key %q: %w", k.bucket, key, jetstream.ErrInvalidKey)
	}
	ctx, cancel := k.bound(ctx)
	defer cancel()
	ack, err := k.js.Publish(ctx, k.subject(key), value, jetstream.WithExpectStream(k.stream()))
	if err != nil {
		return 0, k.fail("write", key, err)
	}
	return ack.Sequence, nil
}

func (k *directKV) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || k.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, k.timeout)
}

func (k *directKV) fail(what, key string, err error) error {
	if errors.Is(err, nats.ErrNoResponders) {
		// Nothing serves the direct get subject: the stream is missing.
		err = fmt.Errorf("%w (%v)", jetstream.ErrBucketNotFound, err)
	}
	return fmt.Errorf("%s %s key %s: %w", what, k.bucket, key, err)
}

// directBatchMax bounds the messages of one batched direct get: the
// server's limit on a multi_last answer, and the largest batch asked for.
const directBatchMax = 1024

// directRequest is the body of a direct get batch request (the server's
// JSApiMsgGetRequest).
type directRequest struct {
	Seq       uint64   `json:"seq,omitempty"`
	NextFor   string   `json:"next_by_subj,omitempty"`
	Batch     int      `json:"batch,omitempty"`
	MultiLast []string `json:"multi_last,omitempty"`
}

// directEnd is what the end-of-batch marker says.
type directEnd struct {
	empty   bool   // nothing matched at all
	pending uint64 // messages left after this batch
	last    uint64 // sequence of the last message sent
	upTo    uint64 // multi_last: the stream sequence the answer is valid up to
}

// batch sends a direct get batch request and hands each message to fn
// until the server's end-of-batch marker.
func (k *directKV) batch(ctx context.Context, req directRequest, fn func(*kvEntry)) (directEnd, error) {
	ctx, cancel := k.bound(ctx)
	defer cancel()
	body, err := json.Marshal(req)
	if err != nil {
		return directEnd{}, err
	}
	if req.Batch > directBatchMax {
		return directEnd{}, fmt.Errorf("list %s: batch of %d, at most %d", k.bucket, req.Batch, directBatchMax)
	}
	// A channel of its own that holds a whole answer: a synchronous
	// subscription's default channel (512Ki messages) costs 4 MiB of
	// zeroed memory per read, and one that could overflow would drop an
	// entry silently.
	inbox := k.nc.NewInbox()
	ch := make(chan *nats.Msg, directBatchMax+2)
	sub, err := k.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return directEnd{}, err
	}
	defer sub.Unsubscribe()
	if err := k.nc.PublishRequest("$JS.API.DIRECT.GET."+k.stream(), inbox, body); err != nil {
		return directEnd{}, err
	}
	for {
		var msg *nats.Msg
		select {
		case msg = <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err == nil && msg.Header.Get("Status") == "503" {
			err = nats.ErrNoResponders
		}
		if err != nil {
			return directEnd{}, k.fail("list", strings.Join(append(req.MultiLast, req.NextFor), ","), err)
		}
		end, ok, err := decodeDirectEnd(msg)
		if err != nil {
			return directEnd{}, fmt.Errorf("list %s: %w", k.bucket, err)
		}
		if ok {
			return end, nil
		}
		e, err := decodeDirect(k.bucket, msg)
		if err != nil {
			return directEnd{}, fmt.Errorf("list %s: %w", k.bucket, err)
		}
		fn(e)
	}
}

// kvEntry is one key's value as a direct get returns it.
type kvEntry struct {
	bucket  string
	key     string
	value   []byte
	rev     uint64
	created time.Time
	op      jetstream.KeyValueOp
}

func (e *kvEntry) Bucket() string                  { return e.bucket }
func (e *kvEntry) Key() string                     { return e.key }
func (e *kvEntry) Value() []byte                   { return e.value }
func (e *kvEntry) Revision() uint64                { return e.rev }
func (e *kvEntry) Created() time.Time              { return e.created }
func (e *kvEntry) Delta() uint64                   { return 0 }
func (e *kvEntry) Operation() jetstream.KeyValueOp { return e.op }

// errNoMessage is a direct get's "404": no message for the subject.
var errNoMessage = fmt.Errorf("%w", jetstream.ErrKeyNotFound)

// decodeDirect reads a direct get reply for bucket: a status reply, or
// the stored message with the headers the server adds.
func decodeDirect(bucket string, msg *nats.Msg) (*kvEntry, error) {
	if status := msg.Header.Get("Status"); status != "" && len(msg.Data) == 0 {
		if status == "404" {
			return nil, errNoMessage
		}
		desc := msg.Header.Get("Description")
		if desc == "" {
			desc = "direct get refused"
		}
		return nil, fmt.Errorf("status %s: %s", status, desc)
	}
	subj := msg.Header.Get(jetstream.SubjectHeader)
	key, ok := strings.CutPrefix(subj, record.KVSubject(bucket, ""))
	if !ok || !record.ValidKey(key) {
		return nil, fmt.Errorf("reply for subject %q, not a key of %s", subj, bucket)
	}
	seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil || seq == 0 {
		return nil, fmt.Errorf("reply for %s: bad sequence %q", key, msg.Header.Get(jetstream.SequenceHeader))
	}
	created, err := time.Parse(time.RFC3339Nano, msg.Header.Get(jetstream.TimeStampHeaer))
	if err != nil {
		return nil, fmt.Errorf("reply for %s: bad time stamp %q", key, msg.Header.Get(jetstream.TimeStampHeaer))
	}
	e := &kvEntry{bucket: bucket, key: key, value: msg.Data, rev: seq, created: created}
	switch msg.Header.Get("KV-Operation") {
	case "DEL":
		e.op = jetstream.KeyValueDelete
	case "PURGE":
		e.op = jetstream.KeyValuePurge
	case "":
		switch msg.Header.Get(jetstream.MarkerReasonHeader) {
		case "MaxAge", "Purge":
			e.op = jetstream.KeyValuePurge
		case "Remove":
			e.op = jetstream.KeyValueDelete
		}
	}
	return e, nil
}

// decodeDirectEnd tells whether msg ends a batch ("204", or "404" when
// nothing matched) and what it says.
func decodeDirectEnd(msg *nats.Msg) (directEnd, bool, error) {
	if len(msg.Data) != 0 {
		return directEnd{}, false, nil
	}
	switch msg.Header.Get("Status") {
	case "":
		return directEnd{}, false, nil
	case "404":
		return directEnd{empty: true}, true, nil
	case "204":
		var end directEnd
		for _, f := range []struct {
			name string
			dst  *uint64
		}{{"Nats-Num-Pending", &end.pending}, {jetstream.LastSequenceHeader, &end.last}, {"Nats-UpTo-Sequence", &end.upTo}} {
			v := msg.Header.Get(f.name)
			if v == "" {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return directEnd{}, false, fmt.Errorf("end of batch: bad %s %q", f.name, v)
			}
			*f.dst = n
		}
		return end, true, nil
	default:
		desc := msg.Header.Get("Description")
		if desc == "" {
			desc = "direct get refused"
		}
		return directEnd{}, false, fmt.Errorf("status %s: %s", msg.Header.Get("Status"), desc)
	}
}
