package broker

import (
	"errors"
	"fmt"
	"time"
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
