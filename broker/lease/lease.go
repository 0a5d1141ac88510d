// Package lease elects one holder of a duty among several processes on a
// JetStream system (e.g. the audit chainer when several `docaxis serve`
// run against one cluster): a key of a KV bucket whose entries expire
// after a TTL, created by whoever takes the duty and renewed by its holder
// with compare-and-set on its revision. A holder that dies stops renewing
// and the key expires; one that stops deletes it, and another process
// takes over at once.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/docaxis/docaxis/broker/bucket"
	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the KV bucket of the bus's leases.
const Bucket = record.LeaseBucket

// DefaultTTL is how long a lease outlives its holder's last renewal.
const DefaultTTL = 10 * time.Second

// ErrLost is the cause of the duty's context when the lease was lost
// (another process holds it, or it could not be renewed before it
// expired); the duty must stop writing.
var ErrLost = errors.New("lease lost")

// Config of an election.
type Config struct {
	// TTL of the lease (default DefaultTTL). Every process of one bus
	// must use the same: the bucket has one.
	TTL time.Duration
	// Replicas of the lease bucket (default 1).
	Replicas int
	// Holder names this process in the lease (default host, pid and a
	// random suffix).
	Holder string
	Logger *slog.Logger
}

// Election is one process's part in the election of a duty.
type Election struct {
	kv     jetstream.KeyValue
	duty   string
	holder string
	ttl    time.Duration
	log    *slog.Logger
}

// New sets the lease bucket up for an election of duty, asking again
// through a failover within ctx.
func New(ctx context.Context, js jetstream.JetStream, duty string, cfg Config) (*Election, error) {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Holder == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.Holder = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	// Through a failover: processes set their elections up as they start,
	// which on a cluster may be while a node restarts.
	kv, err := failover.Do(ctx, failover.Policy{Logger: cfg.Logger}, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: Bucket, Description: "docaxis: holders of single-writer duties", History: 1,
			TTL: cfg.TTL, Replicas: cfg.Replicas,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("lease %s: set up bucket %s: %w", duty, Bucket, err)
	}
	return &Election{kv: kv, duty: duty, holder: cfg.Holder, ttl: cfg.TTL, log: cfg.Logger.With("duty", duty, "holder", cfg.Holder)}, nil
}

// Run takes part in the election until ctx ends: whenever this process
// holds the lease, it runs fn with a context that ends when the lease is
// lost (cause ErrLost) or ctx ends, waits for fn to return, and lets the
// lease go. It returns when ctx has ended and fn has returned.
func (e *Election) Run(ctx context.Context, fn func(ctx context.Context)) {
	for ctx.Err() == nil {
		rev, ok := e.take(ctx)
		if !ok {
			e.wait(ctx)
			continue
		}
		e.log.Info("lease taken: this process runs the duty")
		e.hold(ctx, rev, fn)
	}
}

// take creates the lease key; ok is false when another process holds it
// (or the bucket cannot be reached now).
func (e *Election) take(ctx context.Context) (uint64, bool) {
	rctx, cancel := context.WithTimeout(ctx, e.ttl/2)
	defer cancel()
	rev, err := e.kv.Create(rctx, e.duty, []byte(e.holder))
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) && ctx.Err() == nil {
			e.log.Debug("lease not taken", "err", err)
		}
		return 0, false
	}
	return rev, true
}

// wait returns when the lease may be free: its key was deleted or
// expired, or a third of the TTL passed (a watch missed in a failover).
func (e *Election) wait(ctx context.Context) {
	wctx, cancel := context.WithTimeout(ctx, e.ttl/3)
	defer cancel()
	w, err := e.kv.Watch(wctx, e.duty, jetstream.UpdatesOnly())
	if err != nil {
		<-wctx.Done()
		return
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-wctx.Done():
			return
		case u, ok := <-w.Updates():
			if !ok {
				<-wctx.Done()
				return
			}
			if u != nil && u.Operation() != jetstream.KeyValuePut {
				return // deleted by a holder that stopped
			}
		}
	}
}

// hold runs fn while renewing the lease every third of the TTL; it ends
// fn when the lease is lost or ctx ends, and deletes the key after fn has
// returned (if it still holds it).
func (e *Election) hold(ctx context.Context, rev uint64, fn func(context.Context)) {
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(dctx)
	}()
	tick := time.NewTicker(e.ttl / 3)
	defer tick.Stop()
	renewed := time.Now()
	held := true
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-done:
			break loop // the duty ended by itself: let another process try
		case <-tick.C:
			rctx, rcancel := context.WithTimeout(ctx, e.ttl/3)
			next, err := e.kv.Update(rctx, e.duty, []byte(e.holder), rev)
			rcancel()
			switch {
			case err == nil:
				rev, renewed = next, time.Now()
			case isConflict(err):
				e.log.Warn("lease lost: another process holds it", "err", err)
				held = false
				cancel(ErrLost)
				break loop
			case time.Since(renewed) >= e.ttl-e.ttl/6:
				// Too close to expiry to be sure nobody else took it.
				e.log.Warn("lease lost: not renewed before it expired", "err", err)
				held = false
				cancel(ErrLost)
				break loop
			default:
				e.log.Debug("lease not renewed yet", "err", err)
			}
		}
	}
	cancel(nil)
	<-done
	if held {
		// Hand over at once rather than after the TTL.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), e.ttl/3)
		defer rcancel()
		if err := e.kv.Delete(rctx, e.duty, jetstream.LastRevision(rev)); err != nil && !isConflict(err) {
			e.log.Debug("lease not released: it expires by itself", "err", err)
		}
		e.log.Info("lease released")
	}
}

// isConflict tells a compare-and-set refused because the key changed
// (another holder) or vanished (expired).
func isConflict(err error) bool {
	return bucket.Conflict(err) || errors.Is(err, jetstream.ErrKeyNotFound)
}
