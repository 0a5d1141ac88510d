package broker

import (
	"context"
	"fmt"
	"strings"
)

// ReferencedAttachments returns the SHA-256 of every attachment a retained
// envelope lists (from the access index the tracker keeps), for garbage
// collection of the store.
func (c *Client) ReferencedAttachments(ctx context.Context) (map[string]bool, error) {
	kv, err := c.js.KeyValue(ctx, FileRefsBucket)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", FileRefsBucket, c.explain(err))
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", FileRefsBucket, err)
	}
	refs := map[string]bool{}
	for k := range lister.Keys() {
		if sum, _, ok := strings.Cut(k, "."); ok {
			refs[sum] = true
		}
	}
	return refs, nil
}
