package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/broker/lease"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/broker/responder"
)

// LeaseDuty names the audit chainer's lease (see package lease): one
// process of a bus writes the chain at a time.
const LeaseDuty = "audit-chainer"

// campaign sets the chainer's election up (startCtx bounds that) and runs
// it until ctx ends: while this process holds the lease, it links the
// record and answers checkpoint requests; otherwise it stays quiet.
func (c *Chainer) campaign(startCtx, ctx context.Context) error {
	el, err := lease.New(startCtx, c.js, LeaseDuty, lease.Config{TTL: c.cfg.LeaseTTL, Replicas: c.cfg.Replicas, Logger: c.log})
	if err != nil {
		return err
	}
	go func() {
		defer close(c.done)
		el.Run(ctx, c.lead)
	}()
	return nil
}

// lead writes the chain for as long as ctx lasts (the lease is held): it
// goes on from the head on record, which the previous holder may have
// moved.
func (c *Chainer) lead(ctx context.Context) {
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := c.loadState(rctx)
		cancel()
		if err == nil {
			c.mu.Lock()
			c.st = st
			c.mu.Unlock()
			break
		}
		c.log.Warn("audit chainer: load the chain head", "err", err)
		if sleep(ctx, time.Second); ctx.Err() != nil {
			return
		}
	}
	sub, err := responder.Listen(ctx, c.js.Conn(), responder.Config{
		Subject: RequestSubject, Handler: record.FromBus(c.serveRequest),
	})
	if err != nil {
		c.log.Error("audit chainer: subscribe", "subject", RequestSubject, "err", err)
	}
	c.leading.Store(true)
	c.log.Info("audit chainer writing the chain", "head_seq", c.Head().Seq)
	defer func() {
		c.leading.Store(false)
		if sub != nil {
			sub.Stop()
		}
	}()
	c.run(ctx)
}

// askLeader asks the process that writes the chain for a checkpoint,
// waiting through a handover.
func (c *Chainer) askLeader(ctx context.Context) (*SignedCheckpoint, error) {
	resp, err := lease.Ask(ctx, c.js.Conn(), RequestSubject, nil, c.leading.Load)
	if errors.Is(err, lease.ErrHeldHere) {
		return c.Checkpoint(ctx) // this process took over meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("audit checkpoint: ask the chainer that writes the chain: %w", err)
	}
	if len(resp.Data) > 0 && resp.Data[0] == '{' {
		var e struct{ Error string }
		_ = json.Unmarshal(resp.Data, &e)
		return nil, fmt.Errorf("audit checkpoint: chainer: %s", e.Error)
	}
	return VerifyCheckpoint(resp.Data, c.cfg.Key.Chain[1:])
}

// Leading tells whether this process writes the chain now.
func (c *Chainer) Leading() bool { return c.leading.Load() }
