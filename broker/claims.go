package broker

import (
	"context"
	"fmt"
)

// ClaimCheck tells, for a bus in a federation, which codes it may
// register: it reads the federation's code bindings once and returns the
// check to ask per code (nil error: the code may be registered here). The
// federation package provides it (federation.ClaimCheck); outside a
// federation it allows every code.
type ClaimCheck func(ctx context.Context, c *Client) (func(code string) error, error)

// WithClaimCheck makes every registration through the client (RegisterAgency,
// ImportAgencies, and what calls them: the CLI, the compatibility API) ask
// check before it writes a code this bus does not already serve, so that no
// entry point registers a code bound to another bus.
func WithClaimCheck(check ClaimCheck) Option {
	return func(o *options) error { o.claims = check; return nil }
}

// claims returns the per-code check of the client's ClaimCheck (one that
// allows everything without one).
func (c *Client) claims(ctx context.Context) (func(code string) error, error) {
	if c.opts.claims == nil || c.Bus() == "" {
		return func(string) error { return nil }, nil
	}
	check, err := c.opts.claims(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("check the federation's code bindings: %w", err)
	}
	return check, nil
}
