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
	if a.Withdrawn.IsZero() {
		return nil
	}
	return fmt.Errorf("%s: %w: bus %s left the federation at %s", a.Code, ErrWithdrawn, a.Bus, a.Withdrawn.UTC().Format(time.RFC3339))
}
