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

func docIDKey(docID string) string {
	sum := sha256.Sum256([]byte(docID))
	return hex.EncodeToString(sum[:])
}

func (c *Client) docIDs(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := c.js.KeyValue(ctx, DocIDBucket)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", DocIDBucket, c.explain(err))
	}
	return kv, nil
}

// RememberDocumentID records that the external document docID travels as
// envelope id.
func (c *Client) RememberDocumentID(ctx context.Context, docID, id string) error {
	kv, err := c.docIDs(ctx)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, docIDKey(docID), []byte(id)); err != nil {
		return fmt.Errorf("remember document id %q: %w", docID, err)
	}
	return nil
}

// ResolveDocumentID returns the envelope an external document id was sent
// as.
func (c *Client) ResolveDocumentID(ctx context.Context, docID string) (string, bool) {
	kv, err := c.docIDs(ctx)
	if err != nil {
		return "", false
	}
	e, err := kv.Get(ctx, docIDKey(docID))
	if errors.Is(err, jetstream.ErrKeyNotFound) || err != nil {
		return "", false
	}
	return string(e.Value()), true
}
