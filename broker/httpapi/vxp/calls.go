package vxp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bucket"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// A signed sendEdoc call sends once. The SDK resends a POST on an I/O
// error and a captured request can be replayed (PROTOCOL.md §1, §2), so
// the call's key in the index's bucket (callKey: the system and the hash
// of the signed header) holds first a claim, taken before anything is
// sent, then the DocId the send produced. Of identical calls at once one
// takes the claim and sends; the others wait for its DocId. A send that
// fails gives the claim up, so that the call asked again sends.

// callPending starts the value of a claim; the time it was taken follows.
const callPending = "pending "

var (
	// callWait bounds how long an identical call waits for the DocId of
	// the one that sends before it is told to ask again.
	callWait = 10 * time.Second
	// callPoll is how often it looks meanwhile.
	callPoll = 50 * time.Millisecond
	// callStale: a claim older than this is taken over. Its holder
	// stopped between the send and its DocId (a crash, or a bucket that
	// did not take the DocId): whether it sent is unknown, and sending
	// again beats never sending that call.
	callStale = time.Hour
	// callPatience bounds writing the DocId or giving the claim up, which
	// go on when the caller has gone: the send is done either way.
	callPatience = 2 * time.Minute
)

// errCallPending: an identical call holds the claim and has no DocId yet.
var errCallPending = errors.New("the same signed sendEdoc call is being sent by another request; ask again for its DocId")

func callKey(sys string, signed []byte) string {
	sum := sha256.Sum256(signed)
	return "call." + envelope.Token(sys) + "." + hex.EncodeToString(sum[:16])
}

// callClaim is a claim held on a call's key, at revision rev.
type callClaim struct {
	key string
	rev uint64
}

func pendingValue() []byte {
	return []byte(callPending + time.Now().UTC().Format(time.RFC3339Nano))
}

// claimCall claims system sys's signed call. It returns the DocId an
// earlier identical call sent (and no claim), or the claim; errCallPending
// when an identical call holds the claim for longer than callWait.
func (x *index) claimCall(ctx context.Context, sys string, signed []byte) (string, *callClaim, error) {
	key := callKey(sys, signed)
	deadline := time.Now().Add(callWait)
	for {
		rev, err := x.kv.Create(ctx, key, pendingValue())
		if err == nil {
			return "", &callClaim{key: key, rev: rev}, nil
		}
		if !bucket.Conflict(err) {
			return "", nil, fmt.Errorf("claim sendEdoc call %s: %w", key, err)
		}
		e, err := x.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // given up meanwhile: claim it
		}
		if err != nil {
			return "", nil, fmt.Errorf("read sendEdoc call %s: %w", key, err)
		}
		v := string(e.Value())
		if envelope.IsID(v) {
			return v, nil, nil
		}
		if at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(v, callPending)); err != nil || time.Since(at) > callStale {
			rev, err := x.kv.Update(ctx, key, pendingValue(), e.Revision())
			if err == nil {
				x.log.Warn("vxp: stale sendEdoc claim taken over; the call may send twice", "key", key, "claim", v)
				return "", &callClaim{key: key, rev: rev}, nil
			}
			if !bucket.Conflict(err) {
				return "", nil, fmt.Errorf("claim sendEdoc call %s: %w", key, err)
			}
			continue
		}
		if time.Now().After(deadline) {
			return "", nil, fmt.Errorf("%w (claimed %s)", errCallPending, strings.TrimPrefix(v, callPending))
		}
		select {
		case <-ctx.Done():
			return "", nil, fmt.Errorf("wait for sendEdoc call %s: %w", key, ctx.Err())
		case <-time.After(callPoll):
		}
	}
}

// recordCall turns the claim into the DocId the call sent, asked again
// through a failover. Until it is written identical calls are told to ask
// again: none sends a second time before the claim is stale.
func (x *index) recordCall(ctx context.Context, c *callClaim, id string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callPatience)
	defer cancel()
	_, err := broker.Retry(ctx, x.c, func(ctx context.Context) (uint64, error) {
		return x.kv.Update(ctx, c.key, []byte(id), c.rev)
	})
	if bucket.Conflict(err) {
		// An attempt whose answer was lost wrote it.
		if e, gerr := x.kv.Get(ctx, c.key); gerr == nil && string(e.Value()) == id {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("remember sendEdoc call %s sent %s: %w", c.key, id, err)
	}
	return nil
}

// releaseCall gives up the claim of a call that sent nothing, so that the
// call asked again sends. A claim not given up is taken over once stale.
func (x *index) releaseCall(ctx context.Context, c *callClaim) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callPatience)
	defer cancel()
	_, err := broker.Retry(ctx, x.c, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, x.kv.Delete(ctx, c.key, jetstream.LastRevision(c.rev))
	})
	if err != nil && !bucket.Conflict(err) {
		x.log.Warn("vxp: sendEdoc claim not given up; the same call is refused until it is stale", "key", c.key, "stale", callStale, "err", err)
	}
}
