package operations

import (
	"errors"
	"path/filepath"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/signing"
)

// Operator performs the operator's actions on the bus its client is
// connected to, from the bus's home.
type Operator struct {
	c    *broker.Client
	ks   *signing.Keystore
	auth *auth.Authority
}

// Option adjusts an Operator.
type Option func(*Operator)

// WithAuthority issues NATS credentials with a (a bus with
// authentication); without it the actions issue none.
func WithAuthority(a *auth.Authority) Option {
	return func(o *Operator) { o.auth = a }
}

// New returns the operator of the bus c is connected to, working from the
// home whose keystore is ks.
func New(c *broker.Client, ks *signing.Keystore, opts ...Option) *Operator {
	o := &Operator{c: c, ks: ks}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// Client is the bus client the operator acts through.
func (o *Operator) Client() *broker.Client { return o.c }

// ErrOtherSystem: the agency is registered and served otherwise (by
// another system, its own key, or nothing), and the caller may not move it.
var ErrOtherSystem = errors.New("agency not served by this system")

// AgencyCredsPath is where a home keeps agency code's NATS credentials.
func AgencyCredsPath(home, code string) string {
	return filepath.Join(home, "agencies", code, "nats.creds")
}

// SystemCredsPath is where a home keeps system id's NATS credentials.
func SystemCredsPath(ks *signing.Keystore, id string) string {
	return filepath.Join(ks.SystemDir(id), "nats.creds")
}
