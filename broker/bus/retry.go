package bus

import (
	"context"

	"github.com/docaxis/docaxis/broker"
)

// retry is broker.Retry: the bus's services ask the bus's own server
// through a failover as its client does (the rate gate's first read of
// its floor on main, merged with this package's move).
func retry[T any](ctx context.Context, c *broker.Client, fn func(ctx context.Context) (T, error)) (T, error) {
	return broker.Retry(ctx, c, fn)
}
