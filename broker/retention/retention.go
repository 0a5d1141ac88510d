package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bucket"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go/jetstream"
)

// StateBucket keeps the policy and what retention already removed.
const StateBucket = "AXIS_RETENTION"

// Bus is what retention needs of the bus's own client.
type Bus interface {
	EachTracking(ctx context.Context, fn func(*broker.Tracking) error) error
	ReadEnvelope(ctx context.Context, seq uint64) (*broker.StoredEnvelope, error)
	DeleteTracking(ctx context.Context, sender, id, recipient string) error
	JetStream() jetstream.JetStream
}

// Retention plans and applies the policy. It is safe for concurrent use.
type Retention struct {
	bus   Bus
	js    jetstream.JetStream
	store storage.Store
	holds jetstream.KeyValue
	state jetstream.KeyValue
	now   func() time.Time
	log   *slog.Logger
}

// Option configures Retention.
type Option func(*Retention)

// WithClock sets the clock (default time.Now); tests move it forward.
func WithClock(now func() time.Time) Option { return func(r *Retention) { r.now = now } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(r *Retention) { r.log = l } }

// Open opens (creating them) the holds and state buckets. store is where
// attachment bytes are removed from (the bus's store).
func Open(ctx context.Context, bus Bus, store storage.Store, replicas int, opts ...Option) (*Retention, error) {
	r := &Retention{bus: bus, js: bus.JetStream(), store: store, now: time.Now, log: slog.Default()}
	for _, o := range opts {
		o(r)
	}
	var err error
	if r.holds, err = openBucket(ctx, r.js, HoldBucket, "docaxis legal holds: agencies and documents retention never removes", replicas); err != nil {
		return nil, err
	}
	if r.state, err = openBucket(ctx, r.js, StateBucket, "docaxis retention: the policy, and what was removed", replicas); err != nil {
		return nil, err
	}
	return r, nil
}

func openBucket(ctx context.Context, js jetstream.JetStream, name, desc string, replicas int) (jetstream.KeyValue, error) {
	return bucket.Open(ctx, js, jetstream.KeyValueConfig{Bucket: name, Description: desc, History: 8,
		Storage: jetstream.FileStorage, Replicas: replicas})
}

// Result is what Apply did.
type Result struct {
	Plan *Plan `json:"plan"`
	// Messages removed from the record, tracking pairs, attachments.
	Messages    int `json:"messages"`
	Pairs       int `json:"pairs"`
	Attachments int `json:"attachments"`
	// Skipped: held between the plan and its application.
	Skipped []Item `json:"skipped,omitempty"`
}

// Apply plans and removes what the plan says, holds read again just
// before: an item held meanwhile is skipped. It stops at the first error;
// what was removed by then stays removed, and a new run goes on.
func (r *Retention) Apply(ctx context.Context) (*Result, error) {
	p, err := r.Plan(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{Plan: p}
	holds, err := r.holdSet(ctx)
	if err != nil {
		return res, err
	}
	st, err := r.js.Stream(ctx, record.Stream)
	if err != nil {
		return res, fmt.Errorf("retention: open stream %s: %w", record.Stream, err)
	}
	deleteMsgs := func(seqs []uint64) error {
		for _, seq := range seqs {
			err := st.DeleteMsg(ctx, seq)
			if err != nil && !gone(err) {
				return fmt.Errorf("retention: remove record #%d: %w", seq, err)
			}
			if err == nil {
				res.Messages++
			}
		}
		return nil
	}
	for _, it := range p.Remove {
		if it.Part != PartAttachment && len(holds.of(it.Envelope, it.Sender, it.Recipient)) > 0 {
			res.Skipped = append(res.Skipped, it)
			continue
		}
		switch it.Part {
		case PartRecord:
			if err := deleteMsgs(it.Seqs); err != nil {
				return res, err
			}
			if err := r.bus.DeleteTracking(ctx, it.Sender, it.Envelope, it.Recipient); err != nil {
				return res, fmt.Errorf("retention: %w", err)
			}
			res.Pairs++
		case PartStatuses:
			if err := deleteMsgs(it.Seqs); err != nil {
				return res, err
			}
			if _, err := r.state.Put(ctx, statusMark(it.Sender, it.Envelope, it.Recipient), []byte(it.Until.UTC().Format(time.RFC3339Nano))); err != nil {
				return res, fmt.Errorf("retention: note statuses removed of %s for %s: %w", it.Envelope, it.Recipient, err)
			}
		case PartAttachment:
			if held := holdsOfRefs(holds, it.refs); len(held) > 0 {
				res.Skipped = append(res.Skipped, it)
				continue
			}
			if r.store == nil {
				return res, errors.New("retention: no attachment store to remove attachments from")
			}
			if err := r.store.Delete(ctx, storage.Key(it.SHA256)); err != nil {
				return res, fmt.Errorf("retention: remove attachment %s: %w", it.SHA256, err)
			}
			if _, err := r.state.Put(ctx, attachmentMark(it.SHA256), []byte(r.now().UTC().Format(time.RFC3339Nano))); err != nil {
				return res, fmt.Errorf("retention: note attachment %s removed: %w", it.SHA256, err)
			}
			res.Attachments++
		}
		r.log.Info("retention: removed", "part", it.Part, "envelope", it.Envelope, "recipient", it.Recipient, "sha256", it.SHA256, "messages", len(it.Seqs))
	}
	return res, nil
}

func holdsOfRefs(h *holdSet, refs []ref) []string {
	var out []string
	for _, rf := range refs {
		out = append(out, h.of(rf.id, rf.sender, rf.recipient)...)
	}
	return out
}

// seqNotFound is the server's error code for a sequence not in the stream.
const seqNotFound = 10043

// gone reports whether err says the message is not there (removed by an
// earlier run or by the stream's own limits). nats.go passes the server's
// answer to a delete on as text only, so its code is read from the text.
func gone(err error) bool {
	var api *jetstream.APIError
	if errors.Is(err, jetstream.ErrMsgNotFound) || (errors.As(err, &api) && api.ErrorCode == seqNotFound) {
		return true
	}
	return errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) && strings.Contains(err.Error(), "err_code="+strconv.Itoa(seqNotFound)+" ")
}
