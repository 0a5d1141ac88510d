package record

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Holds reports whether agency holds the attachment whose SHA-256 is sum,
// by the references in refs (FileRefsBucket): it, or system when set (the
// document system serving it), uploaded it (UploadRefKey) or sent or
// received an envelope listing it (FileRefKey). Listing a hash in a signed
// envelope is no proof of holding the bytes: the tracker grants recipients
// access, and a signed envelope is published, only by this rule.
//
// Any replica of refs may answer its reads, one still behind the leader
// too, and a "no" is acted on for good (no access granted, a send
// refused): when confirm is set, a "no" is read again with it, as the
// bucket's leader has it.
func Holds(ctx context.Context, refs jetstream.KeyValue, confirm KeyCheck, sum, agency, system string) (bool, error) {
	keys := []string{FileRefKey(sum, agency), UploadRefKey(sum, agency)}
	if system != "" {
		keys = append(keys, FileRefKey(sum, SystemActor(system)), UploadRefKey(sum, SystemActor(system)))
	}
	for _, k := range keys {
		_, err := refs.Get(ctx, k)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		default:
			return false, fmt.Errorf("check whether %s holds attachment %s: %w", agency, sum, err)
		}
	}
	if confirm == nil {
		return false, nil
	}
	for _, k := range keys {
		found, err := confirm(ctx, k)
		if err != nil {
			return false, fmt.Errorf("check whether %s holds attachment %s: %w", agency, sum, err)
		}
		if found {
			return true, nil
		}
	}
	return false, nil
}

// KeyCheck tells whether key has a value in a bucket, read some other way
// than the bucket's KeyValue (through its leader, say).
type KeyCheck func(ctx context.Context, key string) (bool, error)
