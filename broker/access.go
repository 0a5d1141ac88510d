package broker

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrIDTaken: an envelope id is already bound to another sender.
var ErrIDTaken = errors.New("envelope id already used by another sender")

// EnvelopeSender returns the agency an envelope id is bound to (the sender
// of the first verified copy that used it), or ErrNotFound. Only the bus's
// own client can read the bindings.
func (c *Client) EnvelopeSender(ctx context.Context, id string) (string, error) {
	if !envelope.IsID(id) {
		return "", fmt.Errorf("%q is not an envelope id (a UUID)", id)
	}
	kv, err := c.js.KeyValue(ctx, IDsBucket)
	if err != nil {
		return "", fmt.Errorf("open bucket %s: %w", IDsBucket, c.explain(err))
	}
	e, err := kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", fmt.Errorf("%w: envelope id %s", ErrNotFound, id)
	}
	if err != nil {
		return "", fmt.Errorf("read sender of %s: %w", id, err)
	}
	return string(e.Value()), nil
}

// StatusFor returns envelope id's tracking as agency may see it, derived
// only from agency's own pairs: as its sender, every recipient's pair
// (keys <agency>.<id>.*); as a recipient, its own pair alone (key
// *.<id>.<agency>, whose sender must be the id's bound sender). Role is
// "sender" or "recipient". Anything else is ErrNotFound, so an agency
// cannot tell an envelope that is not its own from one that does not
// exist.
func (c *Client) StatusFor(ctx context.Context, id, agency string) (ds *DocumentStatus, role string, err error) {
	if !envelope.IsID(id) {
		return nil, "", fmt.Errorf("status: %q is not an envelope id (a UUID)", id)
	}
	tok := envelope.Token(agency)
	sent, err := c.trackEntries(ctx, tok+"."+id+".*")
	if err != nil {
		return nil, "", err
	}
	if len(sent) > 0 {
		ds = &DocumentStatus{ID: id, Sender: agency}
		for _, t := range sent {
			if t.Sender != agency || t.Envelope != id {
				continue
			}
			if ds.Subject == "" {
				ds.Subject, ds.Created, ds.DueDate = t.Subject, t.Created, t.DueDate
			}
			ds.Recipients = append(ds.Recipients, *t)
		}
		if len(ds.Recipients) > 0 {
			sort.Slice(ds.Recipients, func(i, j int) bool { return ds.Recipients[i].Recipient < ds.Recipients[j].Recipient })
			return ds, "sender", nil
		}
	}
	got, err := c.trackEntries(ctx, "*."+id+"."+tok)
	if err != nil {
		return nil, "", err
	}
	for _, t := range got {
		if t.Recipient != agency || t.Envelope != id || t.Seq == 0 {
			continue
		}
		return &DocumentStatus{ID: id, Sender: t.Sender, Subject: t.Subject, Created: t.Created, DueDate: t.DueDate, Recipients: []Tracking{*t}}, "recipient", nil
	}
	return nil, "", fmt.Errorf("%w: %s", ErrNotFound, id)
}
