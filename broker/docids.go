package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go/jetstream"
)

// DocIDBucket maps document ids of other systems (edXML DocumentId such as
// "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT") to the envelopes they were
// sent as, so that later statuses, recalls and updates naming them find
// the envelope.
const DocIDBucket = record.DocIDsBucket

// docIDKey is the key of the external document docID sent by agency
// sender. A DocumentId is printed on the document, so any agency can put
// it on one of its own: keyed by the id alone, the last to send it would
// take the first sender's statuses, recalls and updates.
func docIDKey(sender, docID string) string {
	sum := sha256.Sum256([]byte(sender + "\x00" + docID))
	return hex.EncodeToString(sum[:])
}

func (c *Client) docIDs(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := c.js.KeyValue(ctx, DocIDBucket)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", DocIDBucket, c.explain(err))
	}
	return kv, nil
}

// RememberDocumentID records that the external document docID, sent by
// agency sender, travels as envelope id.
func (c *Client) RememberDocumentID(ctx context.Context, sender, docID, id string) error {
	kv, err := c.docIDs(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, docIDKey(sender, docID), []byte(id)); err != nil {
		return fmt.Errorf("remember document id %q: %w", docID, err)
	}
	return nil
}

// ResolveDocumentID returns the envelope agency sender sent the external
// document docID as (edXML statuses name the sender in ResponseFor/OrganId).
func (c *Client) ResolveDocumentID(ctx context.Context, sender, docID string) (string, bool) {
	kv, err := c.docIDs(ctx)
	if err != nil {
		return "", false
	}
	e, err := kv.Get(ctx, docIDKey(sender, docID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return c.resolveDocumentIDOfOld(ctx, kv, sender, docID)
	}
	if err != nil {
		return "", false
	}
	return string(e.Value()), true
}

// resolveDocumentIDOfOld reads what a bus remembered before document ids
// were kept per sender: keyed by the id alone, the last sender's. It
// answers only when the envelope there is bound to sender (the tracking's
// binding, which only the bus's own client reads).
func (c *Client) resolveDocumentIDOfOld(ctx context.Context, kv jetstream.KeyValue, sender, docID string) (string, bool) {
	sum := sha256.Sum256([]byte(docID))
	e, err := kv.Get(ctx, hex.EncodeToString(sum[:]))
	if err != nil {
		return "", false
	}
	id := string(e.Value())
	if bound, err := c.EnvelopeSender(ctx, id); err != nil || bound != sender {
		return "", false
	}
	return id, true
}
