package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/docaxis/docaxis/broker/bucket"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the KV bucket of alerts (key: Alert.ID).
const Bucket = "AXIS_ALERTS"

// openBucket opens the alerts bucket, creating it when missing.
func openBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := bucket.Open(ctx, js, jetstream.KeyValueConfig{Bucket: Bucket, History: 1, Storage: jetstream.FileStorage,
		Replicas: replicas, Description: "docaxis alerts: firing and lately resolved, by rule and subject"})
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	return kv, nil
}

// List reads the alerts the bus keeps, firing first, then by when they
// were raised, newest first. It needs the bus's credentials.
func List(ctx context.Context, js jetstream.JetStream) ([]Alert, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return []Alert{}, nil // alerts never ran on this bus
	}
	if err != nil {
		return nil, fmt.Errorf("open alerts bucket %s: %w", Bucket, err)
	}
	return readAll(ctx, kv)
}

func readAll(ctx context.Context, kv jetstream.KeyValue) ([]Alert, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	defer func() { _ = w.Stop() }()
	out := []Alert{}
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				sortAlerts(out)
				return out, nil
			}
			var a Alert
			if err := json.Unmarshal(e.Value(), &a); err != nil || a.ID != e.Key() {
				continue // not an alert this version wrote
			}
			out = append(out, a)
		case <-ctx.Done():
			return nil, fmt.Errorf("read alerts: %w", ctx.Err())
		}
	}
}

func sortAlerts(list []Alert) {
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if (a.State == Firing) != (b.State == Firing) {
			return a.State == Firing
		}
		if !a.Raised.Equal(b.Raised) {
			return a.Raised.After(b.Raised)
		}
		return a.ID < b.ID
	})
}
