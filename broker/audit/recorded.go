package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go/jetstream"
)

// The audit judges a record's signature at the time the bus recorded it,
// with the window the mailbox allows (signing.MaxBackdate before it,
// signing.MaxSkew after it), never at the time the envelope claims: an
// envelope signed with a revoked key and dated before the revocation must
// not pass in replay when the mailbox refused it.

// recordedCacheTTL bounds how long the chainer trusts what it read of the
// directory; an agency rarely changes bus, but it can.
const recordedCacheTTL = 30 * time.Second

// busDirectory reads from the bus directory what the recorded-time rule
// needs: this bus's id in a federation and the bus serving each agency.
// It opens the bucket on first use: only a record that carries the
// federation's header needs it. A bus without a directory has every record
// count as recorded when it was stored.
type busDirectory struct {
	js  jetstream.JetStream
	ttl time.Duration // 0: keep what was read for the directory's life

	mu    sync.Mutex
	kv    jetstream.KeyValue
	cache map[string]cachedValue // directory key -> what it says
}

type cachedValue struct {
	v    string
	read time.Time
}

func newBusDirectory(js jetstream.JetStream, ttl time.Duration) *busDirectory {
	return &busDirectory{js: js, ttl: ttl, cache: map[string]cachedValue{}}
}

// bucket opens the directory bucket once; nil when the bus has none (yet:
// a later call looks again).
func (d *busDirectory) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.kv != nil {
		return d.kv, nil
	}
	kv, err := d.js.KeyValue(ctx, record.DirectoryBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open directory bucket %s: %w", record.DirectoryBucket, err)
	}
	d.kv = kv
	return kv, nil
}

// recordedAt is the time a record counts as recorded at, for judging its
// signature, by the rule broker.Client applies on receipt: the time this
// bus stored it, or, for a copy from an agency another bus of the
// federation serves, the time the federation header record.HeaderRecorded
// gives (the sender's bus's first signed trace entry), when it is not
// after the stored time. Only the federation service can store a copy
// from an agency of another bus, so an agency cannot set the header for
// itself. header is the header's value ("" when absent); errors are the
// directory's.
func (d *busDirectory) recordedAt(ctx context.Context, header, from string, stored time.Time) (time.Time, error) {
	if header == "" {
		return stored, nil
	}
	bus, err := d.get(ctx, broker.BusKey, nil)
	if err != nil || bus == "" {
		return stored, err
	}
	serving, err := d.get(ctx, record.DirectoryKey(from), agencyBus)
	if err != nil {
		return stored, err
	}
	return record.JudgedAt(header, stored, bus, serving), nil
}

func agencyBus(v []byte) string {
	var a broker.Agency
	if json.Unmarshal(v, &a) != nil {
		return ""
	}
	return a.Bus
}

// get reads key through the cache; decode turns the value into the string
// kept (nil: the value as it is). A missing key is "".
func (d *busDirectory) get(ctx context.Context, key string, decode func([]byte) string) (string, error) {
	d.mu.Lock()
	c, ok := d.cache[key]
	d.mu.Unlock()
	if ok && (d.ttl == 0 || time.Since(c.read) < d.ttl) {
		return c.v, nil
	}
	kv, err := d.bucket(ctx)
	if err != nil || kv == nil {
		return "", err
	}
	e, err := kv.Get(ctx, key)
	v := ""
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
	case err != nil:
		return "", fmt.Errorf("read directory key %s: %w", key, err)
	case decode != nil:
		v = decode(e.Value())
	default:
		v = string(e.Value())
	}
	d.mu.Lock()
	d.cache[key] = cachedValue{v: v, read: time.Now()}
	d.mu.Unlock()
	return v, nil
}
