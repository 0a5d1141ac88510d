package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// Box selects an agency's documents by its role in them.
type Box string

// Boxes.
const (
	BoxSent     Box = "sent"     // documents the agency sent
	BoxReceived Box = "received" // documents addressed to the agency
	BoxAll      Box = "all"      // both
)

// DocumentRef names one document of an agency's list, known from the
// tracking keys alone: no entry has been read to make it.
type DocumentRef struct {
	// ID is the envelope id.
	ID string
	// Role is "sender" or "recipient": the agency's part in it.
	Role string
	// keys of the pairs the agency may read: every recipient's as the
	// sender, its own as a recipient.
	keys []string
}

// Pairs is how many tracking pairs LoadDocument reads for r.
func (r DocumentRef) Pairs() int { return len(r.keys) }

// DocumentIndex lists the documents agency sent, received or both, newest
// first, from the tracking keys only: listing keys transfers no values, so
// a list can then read just the page it shows (LoadDocument). The order is
// by envelope id, descending: ids made by docaxis are UUIDv7, which sort
// by creation time; other UUIDs sort by their value. A document the agency
// both sent and received under one id (only a reused id can do that) is
// listed once per role, the sender's first.
func (c *Client) DocumentIndex(ctx context.Context, agency string, box Box) ([]DocumentRef, error) {
	tok := envelope.Token(agency)
	var filters []string
	switch box {
	case BoxSent:
		filters = []string{record.TrackKeyFilter(agency, "", "")}
	case BoxReceived:
		filters = []string{record.TrackKeyFilter("", "", agency)}
	case BoxAll, "":
		filters = []string{record.TrackKeyFilter(agency, "", ""), record.TrackKeyFilter("", "", agency)}
	default:
		return nil, fmt.Errorf("list documents of %s: box %q: want sent, received or all", agency, box)
	}
	type roleKey struct{ id, role string }
	refs := map[roleKey]*DocumentRef{}
	for _, f := range filters {
		keys, err := c.trackKeys(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			sender, id, recipient, ok := record.SplitTrackKey(k)
			if !ok {
				continue
			}
			role := ""
			switch tok {
			case sender:
				role = "sender"
			case recipient:
				role = "recipient"
			default:
				continue
			}
			rk := roleKey{id, role}
			r := refs[rk]
			if r == nil {
				r = &DocumentRef{ID: id, Role: role}
				refs[rk] = r
			}
			if !slices.Contains(r.keys, k) {
				r.keys = append(r.keys, k)
			}
		}
	}
	out := make([]DocumentRef, 0, len(refs))
	for _, r := range refs {
		sort.Strings(r.keys)
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID > out[j].ID
		}
		return out[i].Role == "sender" && out[j].Role != "sender"
	})
	return out, nil
}

// LoadDocument reads the tracking pairs of ref, one read per pair. Pairs
// deleted meanwhile are skipped.
func (c *Client) LoadDocument(ctx context.Context, ref DocumentRef) ([]*Tracking, error) {
	out := make([]*Tracking, 0, len(ref.keys))
	for _, k := range ref.keys {
		e, err := c.track.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read tracking %s: %w", k, c.explain(err))
		}
		t, err := decodeTracking(e)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// IDSenders returns the agencies that have tracking pairs under envelope
// id as its sender, from the keys alone. It needs a client that may list
// every tracking key (the bus's own): an agency's client sees only its own.
func (c *Client) IDSenders(ctx context.Context, id string) ([]string, error) {
	if !envelope.IsID(id) {
		return nil, fmt.Errorf("%q is not an envelope id (a UUID)", id)
	}
	keys, err := c.trackKeys(ctx, record.TrackKeyFilter("", id, ""))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		sender, kid, _, ok := record.SplitTrackKey(k)
		if !ok || kid != id {
			continue
		}
		if code := envelope.CodeFromToken(sender); !slices.Contains(out, code) {
			out = append(out, code)
		}
	}
	sort.Strings(out)
	return out, nil
}

// trackKeys lists the tracking keys matching filter, without their values:
// every key, whatever changes meanwhile (record.BucketKeys). Tracking
// entries are never deleted one by one; they age out with the bucket's TTL.
func (c *Client) trackKeys(ctx context.Context, filter string) ([]string, error) {
	keys, err := retry(ctx, c, func(ctx context.Context) ([]string, error) {
		return record.BucketKeys(ctx, c.js, record.TrackBucket, filter)
	})
	if err != nil {
		return nil, fmt.Errorf("list tracking: %w", c.explain(err))
	}
	return keys, nil
}
