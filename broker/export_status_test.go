package broker

import "context"

// StatusOrRecord is StatusFor's fallback as if the tracking reads had
// answered "not found": a direct get of a replica catching up does.
func (c *Client) StatusOrRecord(ctx context.Context, id, viewer string) (*DocumentStatus, string, error) {
	return c.statusOrRecord(ctx, id, viewer, notFound(id))
}
