package federation

import "errors"

var (
	// ErrBusID: not a usable bus id.
	ErrBusID = errors.New("invalid bus id")
	// ErrRefused: a federation message failed a check that will not
	// change on a retry (bad signature, spoofed sender, broken trace,
	// misrouted); it is quarantined with the reason.
	ErrRefused = errors.New("federation message refused")
	// ErrSpoofed: the sending agency is not served by the bus the message
	// came from.
	ErrSpoofed = errors.New("sender not served by the bus the message came from")
	// ErrTrace: a trace entry is missing, does not verify, or does not
	// chain to the one before it.
	ErrTrace = errors.New("trace does not verify")
	// ErrUnknownBus: no such bus in the federation directory (yet).
	ErrUnknownBus = errors.New("unknown bus")
	// ErrNotRunning: no federation service answers on this bus.
	ErrNotRunning = errors.New("federation service not running on this bus")
)
