package broker

import (
	"errors"
	"fmt"
	"time"

	"github.com/docaxis/docaxis/broker/failover"
)

// ErrWithdrawn: the agency was served by a bus that left the federation;
// its entry stays in the directory for the record, nothing is sent to it.
var ErrWithdrawn = errors.New("agency withdrawn from the federation")

// ServedBy refuses what system may not do for agency a (send for it, read
// and acknowledge its mail): a is not served by system now
// (ErrNotServed), or deleted from the directory (ErrInactive). A
// suspended agency is still served: suspension refuses mail to it, not
// from it. The one rule of the system service, the compatibility API and
// the attachment service.
func (a *Agency) ServedBy(system string) error {
	if a.System != system {
		return fmt.Errorf("%w: system %s, agency %s", ErrNotServed, system, a.Code)
	}
	if a.State == StateDeleted {
		return fmt.Errorf("agency %s: %w: deleted", a.Code, ErrInactive)
	}
	return nil
}

// Served judges system acting for agency code from a read of the
// directory (a and err as LookupAgency or ReadAgency return them), the one
// rule every entry point of a system applies: nil when it may
// (ServedBy); a refusal wrapping ErrNotServed or ErrInactive when the
// directory says no, an unknown agency included (a system is not told an
// agency of another system from an unknown one); the read's error wrapped
// in failover.ErrUnavailable when the directory could not be read now
// (a failover), which is no refusal: asking again passes.
func Served(a *Agency, err error, system, code string) error {
	switch err := DirectoryRead(err, ErrUnknownAgency); {
	case errors.Is(err, ErrUnknownAgency):
		return fmt.Errorf("%w: system %s, agency %s", ErrNotServed, system, code)
	case err != nil:
		return fmt.Errorf("read agency %s: %w", code, err)
	case a.Code != code:
		// Found by its key (dots as underscores): another spelling is not
		// the agency's name, whatever entry it reaches.
		return fmt.Errorf("%w: system %s, agency %q (the agency's code is %s)", ErrNotServed, system, code, a.Code)
	}
	return a.ServedBy(system)
}

// DirectoryRead classifies a failed read of the directory: err itself when
// the directory says no (err is unknown: ErrUnknownAgency,
// ErrUnknownSystem), else err wrapped in failover.ErrUnavailable: the
// directory could not be read now, and asking again passes.
func DirectoryRead(err, unknown error) error {
	if err == nil || errors.Is(err, unknown) || errors.Is(err, failover.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", failover.ErrUnavailable, err)
}

// checkRoutable refuses an agency whose bus left the federation, naming
// the bus and when.
func (a *Agency) checkRoutable() error {
	switch a.State {
	case StateDeleted:
		return fmt.Errorf("%s: %w: deleted from the directory at %s", a.Code, ErrInactive, a.Deleted.UTC().Format(time.RFC3339))
	case StateSuspended:
		return fmt.Errorf("%s: %w: suspended", a.Code, ErrInactive)
	}
	if a.Withdrawn.IsZero() {
		return nil
	}
	return fmt.Errorf("%s: %w: bus %s left the federation at %s", a.Code, ErrWithdrawn, a.Bus, a.Withdrawn.UTC().Format(time.RFC3339))
}
