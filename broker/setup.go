package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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
		c.DuplicateWindow = 2 * time.Hour
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
	if _, err := storage.NewJetStream(ctx, js, storage.JetStreamConfig{Replicas: cfg.Replicas}); err != nil {
		return err
	}
	kvs := []jetstream.KeyValueConfig{
		{Bucket: record.DirectoryBucket, Description: "docaxis agency directory and trusted roots", History: 16, Storage: jetstream.FileStorage, Replicas: cfg.Replicas},
		{Bucket: DocIDBucket, Description: "docaxis: external document ids (edXML DocumentId) to envelope ids", History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas},
		{Bucket: record.FileRefsBucket, Description: "docaxis attachment access: which agencies sent or received each attachment", History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: cfg.Retention},
		{Bucket: record.IDsBucket, Description: "docaxis envelope ids: the sender each id is bound to", History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: cfg.Retention},
		{Bucket: record.ReceivedBucket, Description: "docaxis idempotent receive: envelopes handed to each recipient's application", History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: cfg.Retention},
		// Last: clients wait for this bucket as the sign that the bus is set up.
		{Bucket: record.TrackBucket, Description: "docaxis tracking: latest state per (envelope, recipient)", History: 1, Storage: jetstream.FileStorage, Replicas: cfg.Replicas, TTL: cfg.Retention},
	}
	for _, kc := range kvs {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("set up bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}

// MailboxConsumerConfig is the durable consumer of an agency's mailbox:
// explicit ack, bounded redelivery with back-off. MaxAckPending is large so
// that a slow application does not stall the mailbox, and the mailbox code
// never holds more than one fetch batch unacknowledged.
func MailboxConsumerConfig(agency string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       record.MailboxDurable(agency),
		Description:   "mailbox of " + agency,
		FilterSubject: record.MailboxFilter(agency),
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// No BackOff: the server would take its first step (1s) as the ack
		// wait, and an envelope still being handled, whose progress acks
		// are lost in a failover, would go to another worker meanwhile.
		// Retries are spaced by the mailbox (NakWithDelay); a dead
		// recipient's envelopes come back after AckWait.
		AckWait:       MailboxAckWait,
		MaxDeliver:    MaxDeliver,
		MaxAckPending: 10000,
	}
}

// MailboxAckWait is how long a delivered envelope may go without an ack
// or a progress ack before another receiver gets it. The mailbox sends
// progress acks while it works, so a slow handler is not affected.
var MailboxAckWait = 30 * time.Second

// MaxDeliver bounds redelivery; after the last attempt a message goes to
// the quarantine with its reason.
const MaxDeliver = 6

// EnsureMailbox creates the agency's mailbox consumer if it is missing.
func EnsureMailbox(ctx context.Context, js jetstream.JetStream, agency string) (jetstream.Consumer, error) {
	cfg := MailboxConsumerConfig(agency)
	c, err := js.Consumer(ctx, record.Stream, cfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) || (err == nil &&
		(len(c.CachedInfo().Config.BackOff) > 0 || c.CachedInfo().Config.AckWait != cfg.AckWait)) {
		// Missing, or made with other settings (earlier versions had a
		// BackOff): bring it to this version's.
		c, err = js.CreateOrUpdateConsumer(ctx, record.Stream, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("mailbox of %s: %w", agency, err)
	}
	return c, nil
}

// mailboxConsumer returns agency's mailbox consumer. The bus's own client
// creates or updates it as needed; an agency's client only binds to it:
// its credentials may not create or change consumers (the bus creates the
// mailbox when the agency is registered and updates it on start).
func (c *Client) mailboxConsumer(ctx context.Context, agency string) (jetstream.Consumer, error) {
	if c.opts.agency == "" {
		return EnsureMailbox(ctx, c.js, agency)
	}
	cons, err := c.js.Consumer(ctx, record.Stream, record.MailboxDurable(agency))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("%w for %s (the bus makes it when the agency is registered: docaxis agency add %s)", ErrNoMailbox, agency, agency)
	}
	if err != nil {
		return nil, fmt.Errorf("mailbox of %s: %w", agency, err)
	}
	return cons, nil
}

// ensureMailboxes creates the mailbox of every agency this bus serves
// with credentials of its own that lacks one, brings every one to this
// version's settings, and brings each system's mailbox to serve exactly
// the agencies the directory gives it (catching up on any it missed).
// Agencies cannot create or change consumers: the bus does it on start,
// so a home upgraded from a version whose clients did it themselves needs
// nothing else. Directory-only entries get no mailbox.
func (c *Client) ensureMailboxes(ctx context.Context) error {
	bus := c.Bus()
	c.dir.mu.RLock()
	var codes []string
	bySystem := map[string][]string{}
	for code, a := range c.dir.agencies {
		switch ep := a.endpoint(bus); {
		case ep == code:
			codes = append(codes, code)
		case SystemOfActor(ep) != "":
			bySystem[SystemOfActor(ep)] = append(bySystem[SystemOfActor(ep)], code)
		}
	}
	c.dir.mu.RUnlock()
	slices.Sort(codes)
	for _, code := range codes {
		if _, err := EnsureMailbox(ctx, c.js, code); err != nil {
			return fmt.Errorf("bring mailboxes up to date: %w", err)
		}
	}
	systems, err := c.Systems(ctx)
	if err != nil {
		return fmt.Errorf("bring system mailboxes up to date: %w", err)
	}
	for _, s := range systems {
		if !s.Removed.IsZero() {
			continue
		}
		have, err := c.systemFilters(ctx, s.ID)
		if err != nil {
			return err
		}
		want := bySystem[s.ID]
		var add, remove []string
		for _, a := range want {
			if !slices.Contains(have, a) {
				add = append(add, a)
			}
		}
		for _, a := range have {
			if !slices.Contains(want, a) {
				remove = append(remove, a)
			}
		}
		if len(add) == 0 && len(remove) == 0 && len(have) > 0 {
			continue
		}
		if err := c.syncSystemMailbox(ctx, s.ID, add, remove, add); err != nil {
			return fmt.Errorf("bring system mailboxes up to date: %w", err)
		}
	}
	// Status boxes (sbox_*) of earlier versions: never read since the
	// tracker answers for statuses; a consumer each was what stopped a bus
	// at a few thousand agencies.
	return c.dropStatusBoxes(ctx)
}

// dropStatusBoxes deletes the status-box consumers earlier versions made
// for every agency.
func (c *Client) dropStatusBoxes(ctx context.Context) error {
	st, err := c.js.Stream(ctx, record.Stream)
	if err != nil {
		return fmt.Errorf("open stream %s: %w", record.Stream, err)
	}
	lister := st.ConsumerNames(ctx)
	var names []string
	for name := range lister.Name() {
		if strings.HasPrefix(name, "sbox_") {
			names = append(names, name)
		}
	}
	if err := lister.Err(); err != nil {
		return fmt.Errorf("list consumers of %s: %w", record.Stream, err)
	}
	for _, name := range names {
		if err := c.js.DeleteConsumer(ctx, record.Stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("remove status box %s of an earlier version: %w", name, err)
		}
	}
	if len(names) > 0 {
		c.opts.logger.Info("removed the status-box consumers of an earlier version", "count", len(names))
	}
	return nil
}

// createStream creates or updates a stream, asking again when the server
// answers "error creating store for stream" (err_code 10049): seen when
// another process sets up the same stream at the same moment on a server
// that has just started; the second ask finds the stream made.
func createStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	var err error
	for wait := 50 * time.Millisecond; ; wait *= 2 {
		if _, err = js.CreateOrUpdateStream(ctx, sc); err == nil {
			return nil
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10049 || wait > 2*time.Second {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}
