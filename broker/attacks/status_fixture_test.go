package attacks_test

import (
	"errors"
	"net/http"
	"strings"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
)

// The status attacks (status_leader_test.go, cluster_test.go) share one
// plot: the attacker signs a copy of its own under the victim's id, then
// both attackers ask about the id, and the victim's side reads it.

// statusVictimSubject is the subject of the victim's envelope (victimSend).
const statusVictimSubject = "Mật: chỉ gửi Sơn La"

// statusSendUntracked stops the tracker, then sends the victim's envelope
// (G22 to H14, no attachment): its status is then read from the record
// and confirmed through the leaders, never from tracking. It returns the
// envelope's id.
func (a *arena) statusSendUntracked() string {
	a.t.Helper()
	a.bus.Service.Tracker.Stop()
	res, err := a.client(victimSender).Send(ctxT(a.t), envelope.New(victimSender, []string{victimRecipient}, statusVictimSubject))
	if err != nil {
		a.t.Fatal(err)
	}
	return res.ID
}

// statusForgeID sends the attacker's own verified envelope under the
// victim's id, to its colleague and to the victim's recipient. The bus
// may refuse it as a duplicate; either way the attackers are now party to
// something under that id.
func (a *arena) statusForgeID(id, subject string) {
	a.t.Helper()
	forged := envelope.New(attacker, []string{victimRecipient, attacker2}, subject)
	forged.ID = id
	if _, err := a.client(attacker).Send(ctxT(a.t), forged); err != nil && !errors.Is(err, broker.ErrDuplicate) {
		a.t.Logf("forged send: %v", err)
	}
}

// statusWantNotFound holds both attackers, through the client library and
// over HTTP, to learning nothing of id: the answer is not found, word for
// word the one for an id never used.
func (a *arena) statusWantNotFound(id string) {
	a.t.Helper()
	ctx := ctxT(a.t)
	never := envelope.New(victimSender, []string{victimRecipient}, "chưa từng gửi").ID
	for _, who := range []string{attacker, attacker2} {
		_, errNever := a.client(who).Status(ctx, never)
		ds, err := a.client(who).Status(ctx, id)
		if !errors.Is(err, broker.ErrNotFound) || !errors.Is(errNever, broker.ErrNotFound) {
			a.t.Errorf("status of the victim's id asked by %s: %+v, %v (unused id: %v); want not found", who, ds, err, errNever)
		} else if strings.ReplaceAll(err.Error(), id, "ID") != strings.ReplaceAll(errNever.Error(), never, "ID") {
			a.t.Errorf("asked by %s, the victim's id and an unused one answer apart: %q, %q", who, err, errNever)
		}
		resp, body := a.do(who, http.MethodGet, "/v1/envelopes/"+id+"/status", nil)
		respNever, bodyNever := a.do(who, http.MethodGet, "/v1/envelopes/"+never+"/status", nil)
		if resp.StatusCode != http.StatusNotFound || respNever.StatusCode != http.StatusNotFound ||
			strings.ReplaceAll(string(body), id, "ID") != strings.ReplaceAll(string(bodyNever), never, "ID") {
			a.t.Errorf("GET status as %s: %d %s; unused id: %d %s; want the same 404", who, resp.StatusCode, body, respNever.StatusCode, bodyNever)
		}
	}
}

// statusWantVictims holds each of readers to seeing id as the victim's
// envelope (G22's to H14 alone, as victimSend sent it), with nothing of
// the forged copy.
func (a *arena) statusWantVictims(id string, readers ...*broker.Client) {
	a.t.Helper()
	ctx := ctxT(a.t)
	for _, c := range readers {
		ds, err := c.Status(ctx, id)
		if err != nil {
			a.t.Fatal(err)
		}
		if ds.Sender != victimSender || ds.Subject != statusVictimSubject || len(ds.Recipients) != 1 || ds.Recipients[0].Recipient != victimRecipient {
			a.t.Errorf("the victim's envelope reads %+v; want G22's to H14 alone", ds)
		}
	}
}
