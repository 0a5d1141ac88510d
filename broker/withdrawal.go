package broker

import (
	"errors"
	"fmt"
	"time"
)

// ErrWithdrawn: the agency was served by a bus that left the federation;
// its entry stays in the directory for the record, nothing is sent to it.
var ErrWithdrawn = errors.New("agency withdrawn from the federation")

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
