package broker

// CachedAgencies tells how many directory entries a client holds: every
// one for the bus's own client, those read lately for an agency's.
func CachedAgencies(c *Client) int {
	c.dir.mu.RLock()
	defer c.dir.mu.RUnlock()
	return len(c.dir.agencies)
}
