package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// ReferencedAttachments returns the SHA-256 of every attachment a retained
// envelope lists (from the access index the tracker keeps), for garbage
// collection of the store.
func (c *Client) ReferencedAttachments(ctx context.Context) (map[string]bool, error) {
	kv, err := c.js.KeyValue(ctx, record.FileRefsBucket)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", record.FileRefsBucket, c.explain(err))
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", record.FileRefsBucket, err)
	}
	refs := map[string]bool{}
	for k := range lister.Keys() {
		if record.IsUploadRefKey(k) {
			continue // an upload no envelope lists (yet): collected after --older-than
		}
		if sum, _, ok := strings.Cut(k, "."); ok {
			refs[sum] = true
		}
	}
	return refs, nil
}

// RecordUpload records that agency uploaded the attachment whose SHA-256
// is sum (record.UploadRefKey). The bus's attachment service does it for agency
// clients; the bus's own client does it for what it uploads on an agency's
// behalf (Send, the HTTP API).
func (c *Client) RecordUpload(ctx context.Context, sum, agency string) error {
	if c.opts.agency != "" {
		return nil // the attachment service recorded it
	}
	kv, err := c.fileRefs(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, record.UploadRefKey(sum, agency), []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		return fmt.Errorf("record upload of %s by %s: %w", sum, agency, err)
	}
	return nil
}

func (c *Client) recordUploads(ctx context.Context, agency string, atts []envelope.Attachment) error {
	for _, a := range atts {
		if err := c.RecordUpload(ctx, a.SHA256, agency); err != nil {
			return err
		}
	}
	return nil
}

// fileRefs opens the attachment-access bucket once (the bus's client).
func (c *Client) fileRefs(ctx context.Context) (jetstream.KeyValue, error) {
	c.refsMu.Lock()
	defer c.refsMu.Unlock()
	if c.refs != nil {
		return c.refs, nil
	}
	kv, err := c.js.KeyValue(ctx, record.FileRefsBucket)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", record.FileRefsBucket, c.explain(err))
	}
	c.refs = kv
	return kv, nil
}

// MayRead reports whether agency may read the attachment whose SHA-256 is
// sum: the rule of the bus's attachment service, for the bus's own client
// serving agencies (the HTTP API).
func (c *Client) MayRead(ctx context.Context, sum, agency string) (bool, error) {
	kv, err := c.fileRefs(ctx)
	if err != nil {
		return false, err
	}
	_, err = kv.Get(ctx, record.FileRefKey(sum, agency))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return false, nil
	default:
		return false, fmt.Errorf("check access of %s to attachment %s: %w", agency, sum, err)
	}
}

// Holds reports whether agency holds the attachment whose SHA-256 is sum:
// it, or the document system serving it, uploaded it or sent or received
// an envelope listing it. The tracker grants recipients access by the same
// rule (record.Holds); SendSigned checks it first, so that an envelope
// listing bytes its sender never held is not published at all.
func (c *Client) Holds(ctx context.Context, sum, agency string) (bool, error) {
	kv, err := c.fileRefs(ctx)
	if err != nil {
		return false, err
	}
	// The system serving it holds what it holds; a directory not read
	// now is no answer (a refusal would be for good).
	system := ""
	a, err := c.LookupAgency(ctx, agency)
	switch {
	case err == nil:
		system = a.System
	case !errors.Is(err, ErrUnknownAgency):
		return false, fmt.Errorf("check whether %s holds attachment %s: %w", agency, sum, err)
	}
	return record.Holds(ctx, kv, LeaderCheck(c.nc, record.FileRefsBucket, c.opts.timeout), sum, agency, system)
}

// ReferredByOthers reports whether anything but agency's own upload refers
// to the attachment whose SHA-256 is sum: an envelope listing it, or an
// upload of the same bytes by another agency or system. The store keeps
// one object for the same bytes: an object a refused request of agency's
// put may also be what another agency stored or sent meanwhile, and only
// when nothing else refers to it is it agency's to remove.
func (c *Client) ReferredByOthers(ctx context.Context, sum, agency string) (bool, error) {
	kv, err := c.fileRefs(ctx)
	if err != nil {
		return false, err
	}
	lister, err := kv.ListKeysFiltered(ctx, record.FileRefsOf(sum))
	if err != nil {
		return false, fmt.Errorf("list references to attachment %s: %w", sum, err)
	}
	defer lister.Stop()
	own, others := record.UploadRefKey(sum, agency), false
	for k := range lister.Keys() {
		others = others || k != own // drain the lister
	}
	// The lister ends early, without a word, when ctx does.
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("list references to attachment %s: %w", sum, err)
	}
	return others, nil
}
