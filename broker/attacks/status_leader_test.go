package attacks_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
)

// "Not found" is now confirmed through the leaders of the id bindings and
// the tracking (status_record.go, leaderread.go): an envelope the tracker
// reached, and one reusing its id after it, go through that path. The
// attackers learn nothing there either: not whether the id exists, nor a
// status, nor the victim's recipients, and the answer is the one for an
// id never used.
func TestStatusLeaderConfirmReusedIDAfterTracking(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	id, _ := a.victimSend() // tracked: bound to G22 before the tracker stops
	a.bus.Service.Tracker.Stop()

	// Past the tracker's position, the attacker's own verified copy under
	// the victim's id, to its colleague and to the victim's recipient.
	forged := envelope.New(attacker, []string{victimRecipient, attacker2}, "Dùng lại id sau khi đã theo dõi")
	forged.ID = id
	if _, err := a.client(attacker).Send(ctx, forged); err != nil && !errors.Is(err, broker.ErrDuplicate) {
		t.Logf("forged send: %v", err)
	}

	never := envelope.New(victimSender, []string{victimRecipient}, "chưa từng gửi").ID
	for _, who := range []string{attacker, attacker2} {
		_, errNever := a.client(who).Status(ctx, never)
		ds, err := a.client(who).Status(ctx, id)
		if !errors.Is(err, broker.ErrNotFound) {
			t.Errorf("status of the victim's id asked by %s: %+v, %v; want not found", who, ds, err)
		} else if strings.ReplaceAll(err.Error(), id, "ID") != strings.ReplaceAll(errNever.Error(), never, "ID") {
			t.Errorf("asked by %s, the victim's id and an unused one answer apart: %q, %q", who, err, errNever)
		}
		resp, body := a.do(who, http.MethodGet, "/v1/envelopes/"+id+"/status", nil)
		respNever, bodyNever := a.do(who, http.MethodGet, "/v1/envelopes/"+never+"/status", nil)
		if resp.StatusCode != http.StatusNotFound || respNever.StatusCode != http.StatusNotFound ||
			strings.ReplaceAll(string(body), id, "ID") != strings.ReplaceAll(string(bodyNever), never, "ID") {
			t.Errorf("GET status as %s: %d %s; unused id: %d %s; want the same 404", who, resp.StatusCode, body, respNever.StatusCode, bodyNever)
		}
	}

	// The bus, the victim and its recipient see the victim's envelope, as
	// tracked, with nothing of the forged copy.
	for _, c := range []*broker.Client{a.admin, a.client(victimSender), a.client(victimRecipient)} {
		ds, err := c.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if ds.Sender != victimSender || ds.Subject != "Mật: chỉ gửi Sơn La" || len(ds.Recipients) != 1 || ds.Recipients[0].Recipient != victimRecipient {
			t.Errorf("the victim's envelope reads %+v; want G22's to H14 alone", ds)
		}
	}
}

// A recipient of the victim asking about an id it has no pair of, and an
// attacker asking while the tracker is stopped about an envelope sent to
// it by nobody, get not found from the leaders, never an error naming
// what the record holds.
func TestStatusLeaderConfirmAnswersNothingOfOthers(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	a.bus.Service.Tracker.Stop()
	res, err := a.client(victimSender).Send(ctx, envelope.New(victimSender, []string{victimRecipient}, "Mật: chỉ gửi Sơn La"))
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{attacker, attacker2} {
		_, err := a.client(who).Status(ctx, res.ID)
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
