package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TimestampingKey is the directory key where the bus says whether it
// accepts new documents: past the operator's limit on records without a
// time-stamp (serve --max-untimestamped) it refuses them until the
// time-stamping authority answers again. The directory is readable by
// every agency, so a client that publishes on its own can read it too.
const TimestampingKey = "audit.timestamping"

// ErrTimestamping: the bus refuses new documents because time-stamping of
// its audit record has failed for longer than the operator allows.
var ErrTimestamping = errors.New("bus refuses new documents: time-stamping of the audit record has failed for too long")

// TimestampingState is the value of TimestampingKey.
type TimestampingState struct {
	Refusing bool `json:"refusing"`
	// Since is the time of the oldest checkpoint still waiting for a
	// time-stamp; Limit the operator's allowance.
	Since  time.Time `json:"since,omitzero"`
	Limit  string    `json:"limit,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// timestampingGate caches the directory's answer briefly: one read per
// second at most, whatever the send rate.
type timestampingGate struct {
	mu    sync.Mutex
	read  time.Time
	state TimestampingState
}

const timestampingCacheTTL = time.Second

// checkTimestamping returns an error wrapping ErrTimestamping while the
// bus refuses new documents.
func (c *Client) checkTimestamping(ctx context.Context) error {
	if c.dir.kv == nil {
		return nil
	}
	g := &c.tsGate
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.read) >= timestampingCacheTTL {
		e, err := c.dir.kv.Get(ctx, TimestampingKey)
		var st TimestampingState
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		case err != nil:
			// The directory is how every send finds its recipients: when it
			// cannot be read, those checks fail on their own.
			return nil
		default:
			if json.Unmarshal(e.Value(), &st) != nil {
				st = TimestampingState{}
			}
		}
		g.state, g.read = st, time.Now()
	}
	if g.state.Refusing {
		return fmt.Errorf("%w: nothing time-stamped since %s (limit %s): %s; the bus accepts again once a time-stamping authority answers",
			ErrTimestamping, g.state.Since.UTC().Format(time.RFC3339), g.state.Limit, g.state.Reason)
	}
	return nil
}
