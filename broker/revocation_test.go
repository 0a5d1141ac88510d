package broker_test

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// A revoked agency's new envelopes are rejected; its old ones still verify.
func TestRevocation(t *testing.T) {
	bus := threeAgencies(t)
	ctx := ctxT(t)
	sender := bus.Client(govOffice)
	before, err := sender.Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Trước khi thu hồi"))
	if err != nil {
		t.Fatal(err)
	}
	// CRL times have a resolution of one second: revoke from the next one.
	at := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(at))
	crl, err := bus.CA.NewCRL([]signing.Revocation{{Serial: bus.Identity(govOffice).Certificate().SerialNumber, At: at}}, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A CRL from an untrusted CA is refused.
	other, _ := signing.NewCA("khác", 48*time.Hour)
	bogus, _ := other.NewCRL([]signing.Revocation{{Serial: big.NewInt(1), At: at}}, 1, time.Hour)
	if err := sender.PublishCRL(ctx, bogus); !errors.Is(err, signing.ErrUntrusted) {
		t.Fatalf("bogus CRL: %v", err)
	}
	if err := sender.PublishCRL(ctx, crl); err != nil {
		t.Fatal(err)
	}
	if _, err := sender.Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Sau khi thu hồi")); !errors.Is(err, signing.ErrRevoked) {
		t.Fatalf("send after revocation: %v", err)
	}
	// Signed anyway and published by hand: the recipient refuses it.
	after := envelope.New(govOffice, []string{ngheAn}, "Ký sau khi thu hồi")
	raw, err := bus.Identity(govOffice).Seal(after)
	if err != nil {
		t.Fatal(err)
	}
	publishRaw(t, sender, record.DocSubject(ngheAn, govOffice), raw)

	outs := receiveAll(t, bus.Client(ngheAn), ngheAn) // a fresh client learns the CRL from the directory
	got := map[string]broker.Outcome{}
	for _, o := range outs {
		got[o.ID] = o
	}
	if o := got[before.ID]; !o.Verified {
		t.Fatalf("envelope signed before the revocation: %+v", o)
	}
	if o := got[after.ID]; o.Verified || !strings.Contains(o.Error, "revoked") {
		t.Fatalf("envelope signed after the revocation: %+v", o)
	}
}

func TestPermissionErrorsAreNamed(t *testing.T) {
	bus := securedBus(t)
	b := bus.Client(ngheAn)
	_, err := b.Mailbox(ctxT(t), sonLa)
	if err == nil {
		t.Fatal("opened another agency's mailbox")
	}
	if !errors.Is(err, broker.ErrPermission) && !errors.Is(err, signing.ErrNoIdentity) {
		t.Fatalf("err = %v", err)
	}
}
