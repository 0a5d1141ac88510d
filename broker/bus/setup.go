package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/storage"

	"github.com/nats-io/nats.go/jetstream"
)

// BusConfig sets how the bus keeps its record.
type BusConfig struct {
	// Replicas of every stream and bucket: 1 embedded, 3 on a cluster.
	Replicas int
	// Retention of the record (envelopes and statuses). Default ten years:
	// the record is what auditors replay.
	Retention time.Duration
	// DuplicateWindow for Nats-Msg-Id dedup of sends. Default two hours.
	DuplicateWindow time.Duration
}

func (c *BusConfig) defaults() {
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Retention == 0 {
		c.Retention = 10 * 365 * 24 * time.Hour
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = record.DuplicateWindow
	}
}

// RecordMaxConsumers is the record stream's consumer limit: far above the
// mailboxes of a national directory (111,000 units, most of them served by
// a few hundred systems).
const RecordMaxConsumers = 1_000_000

// Setup creates or updates the streams and buckets of the bus. It is
// idempotent and run by `docaxis serve` at start.
func Setup(ctx context.Context, js jetstream.JetStream, cfg BusConfig) error {
	cfg.defaults()
	streams := []jetstream.StreamConfig{{
		Name:        record.Stream,
		Description: "docaxis record: every envelope and every status",
		Subjects:    record.RecordFilters(),
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
		MaxMsgSize:  1 << 20,
		Discard:     jetstream.DiscardOld,
		// Every standalone agency's mailbox and every system's is a
		// consumer of the record. The server caps a stream that sets no
		// limit at 1,000 consumers (and takes -1 for "not set"), which a
		// country's directory passes: set one it will not reach.
		MaxConsumers: RecordMaxConsumers,
	}, {
		Name:        record.QuarantineStream,
		Description: "docaxis quarantine: messages that could not be processed, with the reason",
		Subjects:    []string{record.QuarantineFilter},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.Retention,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
	}}
	for _, sc := range streams {
		if err := createStream(ctx, js, sc); err != nil {
			return fmt.Errorf("set up stream %s: %w", sc.Name, err)
		}
	}
	// The embedded attachment store lives in the same system; creating it
	// here gives it the bus's replication.
	if _, err := failover.Do(ctx, setupPolicy, func(ctx context.Context) (storage.Store, error) {
		return storage.NewJetStream(ctx, js, storage.JetStreamConfig{Replicas: cfg.Replicas})
	}); err != nil {
		return err
	}
	kvs := []jetstream.KeyValueConfig{
		{Bucket: record.DirectoryBucket, Description: "docaxis agency directory and trusted roots", History: 16, Storage: jetstream.FileStorage, Replicas: cfg.Replicas},
		{Bucket: record.DocIDsBucket, Description: "docaxis: external document ids (edXML DocumentId) to envelope ids", History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas},
		{Bucket: record.FileRefsBucket, Description: "docaxis attachment access: which agencies sent or received each attachment", History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: cfg.Retention},
		{Bucket: record.IDsBucket, Description: "docaxis envelope ids: the sender each id is bound to", History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: cfg.Retention},
		{Bucket: record.ReceivedBucket, Description: "docaxis idempotent receive: envelopes handed to each recipient's application", History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: cfg.Retention},
		// Last: clients wait for this bucket as the sign that the bus is set up.
		{Bucket: record.TrackBucket, Description: "docaxis tracking: latest state per (envelope, recipient)", History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: cfg.Retention},
	}
	for _, kc := range kvs {
		var err error
		if kc.Bucket == record.ReceivedBucket {
			err = setupNoRollup(ctx, js, kc)
		} else {
			_, err = failover.Do(ctx, setupPolicy, func(ctx context.Context) (jetstream.KeyValue, error) {
				return js.CreateOrUpdateKeyValue(ctx, kc)
			})
		}
		if err != nil {
			return fmt.Errorf("set up bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}

// setupNoRollup sets up a bucket whose stream takes no rollup: agencies
// publish their received markers straight to its subjects (AgencyPermissions),
// headers included, which NATS permissions do not look at, and a
// "Nats-Rollup: all" on an agency's own key would purge every agency's
// markers. The bus only puts markers there, never purges one.
// CreateOrUpdateKeyValue would turn rollups on again at every start (for a
// moment, but an agency may be connected then), so it only creates the
// bucket, while it is still empty; after that Setup updates the stream's
// configuration itself.
func setupNoRollup(ctx context.Context, js jetstream.JetStream, kc jetstream.KeyValueConfig) error {
	name := record.KVStream(kc.Bucket)
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = failover.Do(ctx, setupPolicy, func(ctx context.Context) (jetstream.KeyValue, error) {
			return js.CreateKeyValue(ctx, kc)
		})
		if err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
			return err
		}
		s, err = js.Stream(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("open stream %s: %w", name, err)
	}
	sc := s.CachedInfo().Config
	sc.Description, sc.MaxMsgsPerSubject, sc.MaxAge, sc.Replicas = kc.Description, int64(kc.History), kc.TTL, kc.Replicas
	sc.AllowRollup = false
	return createStream(ctx, js, sc)
}

// createStream creates or updates a stream through a failover (package
// failover), as every bucket Setup makes.
func createStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	_, err := failover.Do(ctx, setupPolicy,
		func(ctx context.Context) (jetstream.Stream, error) { return js.CreateOrUpdateStream(ctx, sc) })
	return err
}

// setupPolicy is how Setup asks again, for every stream, bucket and store
// it makes.
var setupPolicy = failover.Policy{Transient: setupTransient}

// setupTransient: what Setup asks again after. A cluster's failures that
// pass by themselves (failover.Transient), among them "no suitable peers
// for placement" while a cluster just started has not yet seen every peer
// online; and "error creating store for stream" (err_code 10049), seen
// when another process sets up the same stream at the same moment on a
// server that has just started: the second ask finds the stream made.
func setupTransient(err error) bool {
	var apiErr *jetstream.APIError
	return failover.Transient(err) || (errors.As(err, &apiErr) && apiErr.ErrorCode == errCreatingStore)
}

// errCreatingStore is the server's "error creating store for stream".
const errCreatingStore jetstream.ErrorCode = 10049
