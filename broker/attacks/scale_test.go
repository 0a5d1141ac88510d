package attacks_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Attacks on what the scale work changed: the bus's client no longer keeps
// every agency's system bindings in memory (it reads them by key and keeps
// the last ones read), and operators' tools read the directory by key.

// scaleSystem registers document system id serving codes and connects
// with its credentials; it returns the client and the system's identity.
func (a *arena) scaleSystem(id string, codes ...string) (*broker.Client, *signing.Identity) {
	a.t.Helper()
	ctx := ctxT(a.t)
	sid, err := a.bus.CA.IssueSystem(id, "Hệ thống "+id, signing.IssueOptions{})
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.bus.Keystore.SaveSystem(sid); err != nil {
		a.t.Fatal(err)
	}
	if err := a.admin.RegisterSystem(ctx, broker.System{ID: id, Name: "Hệ thống " + id, Certificate: string(signing.EncodeCerts(sid.Chain...))}); err != nil {
		a.t.Fatal(err)
	}
	for _, code := range codes {
		a.scaleServe(code, id)
	}
	creds := filepath.Join(a.bus.Dir, "home", "systems", id, "nats.creds")
	if err := a.bus.Auth.SystemCreds(id, creds); err != nil {
		a.t.Fatal(err)
	}
	c, err := broker.Connect(ctx, a.bus.URL(), broker.WithAgencyCredentials(creds), broker.WithKeystore(a.bus.Keystore),
		broker.WithTrust(a.bus.Trust), broker.WithLogger(bustest.Logger()))
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(c.Close)
	return c, sid
}

// scaleServe gives code to system with a new binding signed by the bus's CA.
func (a *arena) scaleServe(code, system string) {
	a.t.Helper()
	ctx := ctxT(a.t)
	ag := broker.Agency{Code: code, Name: "Cơ quan " + code}
	if prev, err := a.admin.LookupAgency(ctx, code); err == nil {
		ag = *prev
	}
	raw, err := a.bus.CA.SignBinding(signing.Binding{Agency: code, System: system})
	if err != nil {
		a.t.Fatal(err)
	}
	ag.System, ag.Bindings = system, append(ag.Bindings, raw)
	if err := a.admin.RegisterAgency(ctx, ag); err != nil {
		a.t.Fatal(err)
	}
}

// A system keeps signing for an agency that moved to another system, after
// the bus had read (and kept) the bindings that gave it the agency: through
// the client library, and with an envelope it sealed itself and hands to
// the bus's system service. Both refused; the new system is not disturbed.
func TestScaleMovedAgencyStaleBindings(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	const x = "000.05.01.H10"
	oldSys, oldID := a.scaleSystem("sys-old", x)
	// The bus verifies this one against x's bindings and keeps them.
	res, err := oldSys.Send(ctx, envelope.New(x, []string{victimRecipient}, "Trước khi chuyển hệ thống"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.admin.WaitState(ctx, res.ID, victimRecipient, envelope.StateSent); err != nil {
		t.Fatal(err)
	}
	newSys, _ := a.scaleSystem("sys-new")
	a.scaleServe(x, "sys-new")

	if _, err := oldSys.Send(ctx, envelope.New(x, []string{victimRecipient}, "Giả danh sau khi chuyển")); !errors.Is(err, broker.ErrNotServed) {
		t.Errorf("old system sends as %s through the library: %v, want ErrNotServed", x, err)
	}
	raw, err := oldID.ForAgency(x).Seal(envelope.New(x, []string{victimRecipient}, "Tự ký sau khi chuyển"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := oldSys.SendSigned(ctx, raw); err == nil {
		t.Errorf("old system's self-sealed envelope as %s accepted after the move: %s", x, res.ID)
	}
	// The same envelope straight to the bus's system service, as the old
	// system's own program would send it, past any check of the library.
	nc, err := nats.Connect(a.bus.URL(), nats.UserCredentials(filepath.Join(a.bus.Dir, "home", "systems", "sys-old", "nats.creds")),
		nats.CustomInboxPrefix(auth.InboxPrefix(broker.SystemActor("sys-old"))))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	e, err := envelope.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	req := nats.NewMsg(record.SystemServiceSubject("sys-old", "pub"))
	req.Data = raw
	req.Header.Set("Docaxis-Subject", "axis.doc."+envelope.Token(victimRecipient)+"."+envelope.Token(x))
	req.Header.Set(jetstream.MsgIDHeader, e.Envelope.ID+"."+envelope.Token(victimRecipient))
	ans, err := nc.RequestMsgWithContext(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bus answered: %s %s", ans.Header.Get("Docaxis-Error"), ans.Data)
	if ans.Header.Get("Docaxis-Error") == "" {
		t.Errorf("the bus published the old system's envelope as %s after the move: %s", x, ans.Data)
	}
	res, err = newSys.Send(ctx, envelope.New(x, []string{victimRecipient}, "Sau khi chuyển hệ thống"))
	if err != nil {
		t.Fatalf("the new system sends as %s: %v", x, err)
	}
	if _, err := a.admin.WaitState(ctx, res.ID, victimRecipient, envelope.StateSent); err != nil {
		t.Fatal(err)
	}
}

// An agency's credentials asking to read the directory by key (as the
// operator's CLI does) stay an agency's: the directory is not theirs to
// write.
func TestScaleDirectoryByKeyAgencyCannotWrite(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	c, err := broker.Connect(ctx, a.bus.URL(), broker.WithDirectoryByKey(), broker.WithAgencyCredentials(a.bus.AgencyCreds(attacker)),
		broker.WithIdentity(a.bus.Identity(attacker)), broker.WithTrust(a.bus.Trust), broker.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	victim, err := c.LookupAgency(ctx, victimRecipient)
	if err != nil {
		t.Fatal(err)
	}
	victim.Certificate = string(signing.EncodeCerts(a.bus.Identity(attacker).Chain...))
	victim.NonStandard = false
	err = c.RegisterAgency(ctx, *victim)
	if err == nil {
		t.Fatal("an agency's client rewrote another agency's directory entry")
	}
	got, err := a.admin.LookupAgency(ctx, victimRecipient)
	if err != nil {
		t.Fatal(err)
	}
	if got.Certificate == victim.Certificate {
		t.Fatal("the victim's entry holds the attacker's certificate")
	}
}
