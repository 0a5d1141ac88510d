package record

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// BucketKeys lists the keys of bucket matching filter as the server counts
// the bucket's subjects, in one step under its lock. Listing keys through
// a consumer (jetstream.KeyValue.ListKeys) can lose a key whose entry
// changes during the listing: a bucket that keeps one revision drops the
// one the consumer was to deliver, and the new one comes after the
// consumer has reported all it had. For buckets whose keys are never
// deleted one by one (they age out or are overwritten): a deleted key's
// marker would be listed as a key.
func BucketKeys(ctx context.Context, js jetstream.JetStream, bucket, filter string) ([]string, error) {
	s, err := js.Stream(ctx, KVStream(bucket))
	if err != nil {
		return nil, fmt.Errorf("keys %s of bucket %s: %w", filter, bucket, err)
	}
	prefix := KVSubject(bucket, "")
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(prefix+filter))
	if err != nil {
		return nil, fmt.Errorf("keys %s of bucket %s: %w", filter, bucket, err)
	}
	keys := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		if k, ok := strings.CutPrefix(subj, prefix); ok {
			keys = append(keys, k)
		}
	}
	return keys, nil
}
