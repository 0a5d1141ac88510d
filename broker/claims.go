package broker

import (
	"context"
	"fmt"
	"maps"

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
// bindings (none for the bus's own client, which follows the directory),
// then a check per code.
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

// applyBus keeps the binding of a bus entry the directory watch saw.
func (d *directory) applyBus(key string, value []byte, deleted bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.buses == nil {
		d.buses = map[string]record.BusBinding{}
	}
	id := key[len(record.DirectoryBusPrefix):]
	if deleted {
		delete(d.buses, id)
		return
	}
	b, err := record.DecodeBusBinding(value)
	if err != nil || b.ID != id {
		// Binds nothing: the national writes well-formed entries only.
		d.log.Warn("directory: bad bus entry", "key", key, "err", err)
		delete(d.buses, id)
		return
	}
	d.buses[id] = b
}

// busBindings returns the active buses' bindings: from the bus's client's
// copy of the directory, or read for an agency's client (which does not
// follow the bus entries).
func (d *directory) busBindings(ctx context.Context) (record.Bindings, error) {
	out := record.Bindings{}
	if d.view == nil {
		d.mu.RLock()
		buses := maps.Clone(d.buses)
		d.mu.RUnlock()
		for _, b := range buses {
			out.Add(b)
		}
		return out, nil
	}
	_, err := d.view.kv.batch(ctx, directRequest{MultiLast: []string{d.view.kv.subject(record.DirectoryBusPrefix + ">")}}, func(e *kvEntry) {
		if e.op != jetstream.KeyValuePut {
			return
		}
		if b, err := record.DecodeBusBinding(e.value); err == nil && record.DirectoryBusKey(b.ID) == e.key {
			out.Add(b)
		}
	})
	return out, err
}
