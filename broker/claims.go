package broker

import (
	"context"
	"fmt"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go/jetstream"
)

// Claims. In a federation a bus may register only the codes the national
// bound to it (record.Bindings): the bus entries holding the bindings are
// in the directory (record.DirectoryBusKey), and every directory write
// that gives a bus a code it did not serve (RegisterAgency, ImportAgencies,
// and what calls them: the CLI, the operator's actions, the compatibility
// API's registerAgency) checks it there, whoever made the client. The
// national refuses a claim outside the binding in any case; checking here
// keeps the bus from serving, even for a moment, a code it may not.

// CheckClaim tells whether this bus may register code under the
// federation's code bindings as its directory holds them (nil outside a
// federation). Registrations check it themselves; an operator's action
// asks it before it issues a key for the code.
func (c *Client) CheckClaim(ctx context.Context, code string) error {
	check, err := c.claims(ctx)
	if err != nil {
		return err
	}
	return check(code)
}

// claims returns the per-code claim check of this bus: one read of the
// bindings, then a check per code.
func (c *Client) claims(ctx context.Context) (func(code string) error, error) {
	bus := c.Bus()
	if bus == "" {
		return func(string) error { return nil }, nil
	}
	bindings, err := c.dir.busBindings(ctx)
	if err != nil {
		return nil, fmt.Errorf("check the federation's code bindings: %w", err)
	}
	return func(code string) error {
		if err := bindings.Claim(bus, code); err != nil {
			return fmt.Errorf("register %s on bus %s: %w", code, bus, err)
		}
		return nil
	}, nil
}

// busBindings returns the active buses' bindings, read from the
// directory bucket.
func (d *directory) busBindings(ctx context.Context) (record.Bindings, error) {
	// Read from the bucket, not from what the directory watch applied so
	// far: a member bus admitted a moment ago must bind its codes at once
	// (the national registering one of them right after was let through).
	kv := d.direct
	if d.view != nil {
		kv = d.view.kv
	}
	out := record.Bindings{}
	_, err := kv.batch(ctx, directRequest{MultiLast: []string{kv.subject(record.DirectoryBusPrefix + ">")}}, func(e *kvEntry) {
		if e.op != jetstream.KeyValuePut {
			return
		}
		if b, err := record.DecodeBusBinding(e.value); err == nil && record.DirectoryBusKey(b.ID) == e.key {
			out.Add(b)
		}
	})
	return out, err
}
