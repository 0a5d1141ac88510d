package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrClusterInUse: the cluster given to a benchmark already carries a bus.
var ErrClusterInUse = errors.New("cluster already carries a docaxis bus")

// claimCluster checks that the external cluster of cfg carries no bus (a
// benchmark sets its own up, with its own CA and agencies, and must not
// mix its traffic into a real record) and returns what removes, after the
// run, every stream the run created.
func claimCluster(ctx context.Context, cfg Config) (cleanup func(), err error) {
	nc, err := nats.Connect(cfg.URL, cfg.NATSOptions...)
	if err != nil {
		return nil, fmt.Errorf("bench: connect to %s: %w", cfg.URL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	before, err := streamNames(ctx, js)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bench: list the streams of %s: %w", cfg.URL, err)
	}
	if slices.Contains(before, record.Stream) {
		nc.Close()
		return nil, fmt.Errorf("bench: %w (stream %s exists): measure an empty cluster, not one in service", ErrClusterInUse, record.Stream)
	}
	return func() {
		defer nc.Close()
		ctx := context.WithoutCancel(ctx)
		after, err := streamNames(ctx, js)
		if err != nil {
			cfg.Log.Warn("bench: streams left on the cluster", "err", err)
			return
		}
		for _, name := range after {
			if !slices.Contains(before, name) {
				if err := js.DeleteStream(ctx, name); err != nil {
					cfg.Log.Warn("bench: stream left on the cluster", "stream", name, "err", err)
				}
			}
		}
	}, nil
}

func streamNames(ctx context.Context, js jetstream.JetStream) ([]string, error) {
	l := js.StreamNames(ctx)
	var out []string
	for n := range l.Name() {
		out = append(out, n)
	}
	return out, l.Err()
}
