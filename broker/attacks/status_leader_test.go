package attacks_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker"
)

// "Not found" is now confirmed through the leaders of the id bindings and
// the tracking (status_record.go, leaderread.go): an envelope the tracker
// reached, and one reusing its id after it, go through that path. The
// attackers learn nothing there either: not whether the id exists, nor a
// status, nor the victim's recipients, and the answer is the one for an
// id never used.
func TestStatusLeaderConfirmReusedIDAfterTracking(t *testing.T) {
	a := newArena(t)
	id, _ := a.victimSend() // tracked: bound to G22 before the tracker stops
	a.bus.Service.Tracker.Stop()

	// Past the tracker's position, the attacker's own verified copy under
	// the victim's id, to its colleague and to the victim's recipient.
	a.statusForgeID(id, "Dùng lại id sau khi đã theo dõi")
	a.statusWantNotFound(id)
	// The bus, the victim and its recipient see the victim's envelope, as
	// tracked.
	a.statusWantVictims(id, a.admin, a.client(victimSender), a.client(victimRecipient))
}

// A recipient of the victim asking about an id it has no pair of, and an
// attacker asking while the tracker is stopped about an envelope sent to
// it by nobody, get not found from the leaders, never an error naming
// what the record holds.
func TestStatusLeaderConfirmAnswersNothingOfOthers(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	id := a.statusSendUntracked()
	for _, who := range []string{attacker, attacker2} {
		_, err := a.client(who).Status(ctx, id)
		if !errors.Is(err, broker.ErrNotFound) {
			t.Errorf("status asked by %s while the tracker is stopped: %v; want not found", who, err)
			continue
		}
		for _, leak := range []string{victimSender, victimRecipient, "#", "copy", "record"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("status asked by %s answers %q, which names %q", who, err, leak)
			}
		}
	}
}
