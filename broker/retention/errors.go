package retention

import "errors"

var (
	// ErrPolicy: the rules are not a policy that can be applied.
	ErrPolicy = errors.New("bad retention policy")
	// ErrHold: a hold names nothing that can be held.
	ErrHold = errors.New("bad legal hold")
	// ErrNoHold: no hold on what was named.
	ErrNoHold = errors.New("no such legal hold")
)
