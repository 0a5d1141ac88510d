// Package bucket opens the bus's KV buckets: the one that is there, as it
// is, or a new one made to a configuration. Whoever comes first makes it;
// a bucket made by an earlier version or by an operator keeps its
// settings (replicas, history). Opening asks again through a failover
// (package failover): the bus's processes open their buckets as they
// start, which on a cluster may be while a node restarts.
package bucket

import (
	"context"
	"errors"
	"fmt"

	"github.com/docaxis/docaxis/broker/failover"
	"github.com/nats-io/nats.go/jetstream"
)

// Open opens the KV bucket cfg.Bucket, making it to cfg when there is
// none; ctx bounds the retries (failover.Do).
func Open(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	kv, err := failover.Do(ctx, failover.Policy{}, func(ctx context.Context) (jetstream.KeyValue, error) {
		kv, err := js.KeyValue(ctx, cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(ctx, cfg)
			if errors.Is(err, jetstream.ErrBucketExists) {
				kv, err = js.KeyValue(ctx, cfg.Bucket) // another process made it meanwhile
			}
		}
		return kv, err
	})
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// Conflict tells a compare-and-set write refused because the key changed
// since the revision given (Update, Delete or Purge with a last revision)
// or exists already (Create). A bucket with one replica and a replicated
// one answer it with different codes (10071 and 10164); nats.go maps both
// to jetstream.ErrKeyRevisionMismatch and jetstream.ErrKeyExists, but
// ErrKeyExists alone misses an Update's conflict on a replicated bucket.
func Conflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
