package broker

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrIDTaken: an envelope id is already bound to another sender.
var ErrIDTaken = errors.New("envelope id already used by another sender")

// idsBucket opens AXIS_IDS once per client.
func (c *Client) idsBucket(ctx context.Context) (jetstream.KeyValue, error) {
	c.idsMu.Lock()
	defer c.idsMu.Unlock()
	if c.ids != nil {
		return c.ids, nil
	}
	kv, err := c.js.KeyValue(ctx, record.IDsBucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", record.IDsBucket, c.explain(err))
	}
	c.ids = kv
	return kv, nil
}

// EnvelopeSender returns the agency an envelope id is bound to (the sender
// of the first verified copy that used it), or ErrNotFound. Only the bus's
// own client can read the bindings.
func (c *Client) EnvelopeSender(ctx context.Context, id string) (string, error) {
	if !envelope.IsID(id) {
		return "", fmt.Errorf("%q is not an envelope id (a UUID)", id)
	}
	kv, err := c.idsBucket(ctx)
	if err != nil {
		return "", err
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

// notFound is the one answer for an envelope that does not exist and one
// that is not the caller's: they must not be told apart.
func notFound(id string) error { return fmt.Errorf("%w: %s", ErrNotFound, id) }

// StatusFor returns envelope id's tracking as agency may see it, derived
// only from agency's own pairs: as the sender the id is bound to, every
// recipient's pair (keys <agency>.<id>.*); as a recipient, its own pair
// alone (key <bound sender>.<id>.<agency>). Role is "sender" or
// "recipient". Anything else is ErrNotFound, so an agency cannot tell an
// envelope that is not its own from one that does not exist. With agency
// "" it is the bus's view: every pair of the bound sender.
func (c *Client) StatusFor(ctx context.Context, id, agency string) (ds *DocumentStatus, role string, err error) {
	if !envelope.IsID(id) {
		return nil, "", fmt.Errorf("status: %q is not an envelope id (a UUID)", id)
	}
	seen := map[string]int{}
	for after := uint64(0); ; {
		page, r, next, err := c.statusPage(ctx, id, agency, after)
		if errors.Is(err, ErrNotFound) && after == 0 {
			return c.statusOrRecord(ctx, id, agency, err) // not tracked yet? (status_record.go)
		}
		if err != nil {
			return nil, "", err
		}
		if ds == nil {
			ds, role = &DocumentStatus{ID: id, Sender: page.Sender}, r
		}
		mergeStatus(ds, page, seen)
		if next == 0 {
			break
		}
		after = next
	}
	if len(ds.Recipients) == 0 {
		return c.statusOrRecord(ctx, id, agency, notFound(id))
	}
	sortRecipients(ds)
	return ds, role, nil
}

// mergeStatus adds a page of an envelope's tracking to ds; seen indexes
// ds.Recipients by recipient, so that a pair read twice keeps its newer
// revision.
func mergeStatus(ds *DocumentStatus, page *DocumentStatus, seen map[string]int) {
	if ds.Subject == "" {
		ds.Subject, ds.Created, ds.DueDate = page.Subject, page.Created, page.DueDate
	}
	for _, t := range page.Recipients {
		if i, ok := seen[t.Recipient]; ok {
			if t.Revision > ds.Recipients[i].Revision {
				ds.Recipients[i] = t
			}
			continue
		}
		seen[t.Recipient] = len(ds.Recipients)
		ds.Recipients = append(ds.Recipients, t)
	}
}

func sortRecipients(ds *DocumentStatus) {
	sort.Slice(ds.Recipients, func(i, j int) bool { return ds.Recipients[i].Recipient < ds.Recipients[j].Recipient })
}

// statusPage reads one page of envelope id's tracking as viewer may see it
// (see StatusFor), after the cursor after; next is the cursor of the next
// page, 0 at the end. A recipient's view is one page.
func (c *Client) statusPage(ctx context.Context, id, viewer string, after uint64) (ds *DocumentStatus, role string, next uint64, err error) {
	sender, err := c.EnvelopeSender(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, "", 0, notFound(id)
	}
	if err != nil {
		return nil, "", 0, err
	}
	ds = &DocumentStatus{ID: id, Sender: sender}
	if viewer == "" || viewer == sender {
		page, err := c.readTrackPage(ctx, envelope.Token(sender)+"."+id+".*", after, trackPageLimit, trackPageBytes)
		if err != nil {
			return nil, "", 0, err
		}
		for _, t := range page.Entries {
			if t.Sender != sender || t.Envelope != id || t.Seq == 0 {
				continue // only pairs a verified copy of the bound sender made
			}
			if ds.Subject == "" {
				ds.Subject, ds.Created, ds.DueDate = t.Subject, t.Created, t.DueDate
			}
			ds.Recipients = append(ds.Recipients, *t)
		}
		if after == 0 && page.Next == 0 && len(ds.Recipients) == 0 {
			return nil, "", 0, notFound(id)
		}
		return ds, "sender", page.Next, nil
	}
	t, err := c.pair(ctx, sender, id, viewer)
	if err != nil {
		return nil, "", 0, err
	}
	ds.Subject, ds.Created, ds.DueDate, ds.Recipients = t.Subject, t.Created, t.DueDate, []Tracking{*t}
	return ds, "recipient", 0, nil
}

// pair reads the tracking of (sender, id, recipient), made by a verified
// copy, or ErrNotFound.
func (c *Client) pair(ctx context.Context, sender, id, recipient string) (*Tracking, error) {
	e, err := c.track.Get(ctx, record.TrackKey(sender, id, recipient))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read tracking of %s for %s: %w", id, recipient, c.explain(err))
	}
	t, err := decodeTracking(e)
	if err != nil {
		return nil, err
	}
	if t.Seq == 0 || t.Sender != sender || t.Envelope != id || t.Recipient != recipient {
		return nil, notFound(id)
	}
	return t, nil
}

// trackingFor returns the tracking of (id, recipient) if viewer may see
// it: the bus (""), the bound sender, or recipient itself.
func (c *Client) trackingFor(ctx context.Context, id, recipient, viewer string) (*Tracking, error) {
	sender, err := c.EnvelopeSender(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	if viewer != "" && viewer != sender && viewer != recipient {
		return nil, notFound(id)
	}
	return c.pair(ctx, sender, id, recipient)
}

// checkIDFree refuses to send envelope id as from when the id is bound to
// another sender: the tracker would not count it. Only clients that can
// read the bindings check (the bus's own, e.g. behind the HTTP API); for
// an agency client the tracker's refusal is the check. The other sender
// is not named.
func (c *Client) checkIDFree(ctx context.Context, id, from string) error {
	if c.opts.agency != "" || !envelope.IsID(id) {
		return nil
	}
	sender, err := c.EnvelopeSender(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("send %s: check its id: %w", id, err)
	case sender != from:
		return fmt.Errorf("send %s as %s: %w", id, from, ErrIDTaken)
	}
	return nil
}
