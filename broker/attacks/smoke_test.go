package attacks_test

import (
	"net/http"
	"testing"
)

// The arena itself works: the victim's document reaches its recipient's
// view over HTTP, and the attacker sees nothing of it.
func TestArenaBaseline(t *testing.T) {
	a := newArena(t)
	id, _ := a.victimSend()
	if resp, body := a.do(victimRecipient, "GET", "/v1/envelopes/"+id, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("recipient reads its envelope: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do(attacker, "GET", "/v1/envelopes/"+id, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("attacker reads another's envelope: %d %s", resp.StatusCode, body)
	}
}
