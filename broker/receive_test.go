package broker_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
)

// receiveSystem registers document system id serving codes on bus and
// returns a client with the system's own credentials.
func receiveSystem(t *testing.T, bus *bustest.Bus, id string, codes ...string) *broker.Client {
	t.Helper()
	ctx := ctxT(t)
	sid, err := bus.CA.IssueSystem(id, "DMS "+id, signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Keystore.SaveSystem(sid); err != nil {
		t.Fatal(err)
	}
	admin := bus.Service.Client
	if err := admin.RegisterSystem(ctx, broker.System{ID: id, Name: "DMS " + id, Certificate: string(signing.EncodeCerts(sid.Chain...))}); err != nil {
		t.Fatal(err)
	}
	for _, code := range codes {
		b, err := bus.CA.SignBinding(signing.Binding{Agency: code, System: id})
		if err != nil {
			t.Fatal(err)
		}
		if err := admin.RegisterAgency(ctx, broker.Agency{Code: code, Name: code, System: id, Bindings: []string{b}}); err != nil {
			t.Fatal(err)
		}
	}
	creds := filepath.Join(bus.Dir, "home", "systems", id, "nats.creds")
	if err := bus.Auth.SystemCreds(id, creds); err != nil {
		t.Fatal(err)
	}
	c, err := broker.Connect(ctx, bus.URL(), broker.WithAgencyCredentials(creds), broker.WithKeystore(bus.Keystore),
		broker.WithTrust(bus.Trust), broker.WithLogger(bustest.Logger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestReceivePathEveryWay runs the same copies through every way of
// receiving: an agency's mailbox, the HTTP API's acknowledgement
// (Client.Acknowledge) and a document system's mailbox. Each must hand
// over the good copy once with a delivered receipt, and refuse the bad
// ones with an invalid receipt and a quarantine entry.
func TestReceivePathEveryWay(t *testing.T) {
	const served = "000.05.00.H14"
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	sys := receiveSystem(t, bus, "dms-test", served)
	sender := bus.Client(govOffice)
	ctx := ctxT(t)

	type way struct {
		name    string
		rcpt    string
		receive func(t *testing.T, id string) []broker.Outcome
	}
	fetch := func(c *broker.Client, agency string) func(t *testing.T, id string) []broker.Outcome {
		return func(t *testing.T, id string) []broker.Outcome {
			var outs []broker.Outcome
			mb, err := c.Mailbox(ctx, agency, broker.OnOutcome(func(o broker.Outcome) {
				if o.ID == id {
					outs = append(outs, o)
				}
			}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mb.Fetch(ctx, 0, 500*time.Millisecond, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
				t.Fatal(err)
			}
			return outs
		}
	}
	agencyClient := bus.Client(ngheAn)
	httpSide := bus.Client() // the HTTP API acknowledges with the bus's client
	ways := []way{
		{"agency mailbox", ngheAn, fetch(agencyClient, ngheAn)},
		{"system mailbox", served, fetch(sys, "")},
		{"acknowledge (HTTP)", ngheAn, func(t *testing.T, id string) []broker.Outcome {
			ack, err := httpSide.Acknowledge(ctx, ngheAn, id)
			if err != nil {
				return []broker.Outcome{{ID: id, Error: err.Error(), Quarantined: strings.Contains(err.Error(), "failed verification")}}
			}
			return []broker.Outcome{{ID: id, Verified: !ack.Duplicate, Duplicate: ack.Duplicate}}
		}},
	}
	for _, w := range ways {
		t.Run(w.name, func(t *testing.T) {
			// A good copy, with an attachment: handed over once, receipted.
			content := []byte("công văn " + w.name)
			res, err := sender.Send(ctx, envelope.New(govOffice, []string{w.rcpt}, "good"),
				broker.File{Name: "cv.txt", Reader: bytes.NewReader(content), Size: int64(len(content))})
			if err != nil {
				t.Fatal(err)
			}
			waitState(t, sender, res.ID, w.rcpt, envelope.StateSent)
			if outs := w.receive(t, res.ID); len(outs) != 1 || !outs[0].Verified {
				t.Fatalf("good copy: outcomes %+v", outs)
			}
			waitState(t, sender, res.ID, w.rcpt, envelope.StateDelivered)
			if outs := w.receive(t, res.ID); len(outs) > 0 && outs[0].Verified {
				t.Fatalf("good copy handed over twice: %+v", outs)
			}

			// A misaddressed copy: signed for another agency, published
			// on the recipient's subject with the sender's own credentials.
			e := envelope.New(govOffice, []string{sonLa}, "misaddressed")
			raw, err := bus.Identity(govOffice).Seal(e, envelope.AllowCodes(func(string) bool { return true }))
			if err != nil {
				t.Fatal(err)
			}
			msg := &nats.Msg{Subject: record.DocSubject(w.rcpt, govOffice), Data: raw, Header: nats.Header{}}
			msg.Header.Set("Nats-Msg-Id", e.ID+"."+envelope.Token(w.rcpt))
			if _, err := sender.JetStream().PublishMsg(ctx, msg); err != nil {
				t.Fatal(err)
			}
			outs := w.receive(t, e.ID)
			if w.name == "acknowledge (HTTP)" {
				// Not tracked (it names another recipient): found by
				// reading the mailbox, refused there.
				if len(outs) != 1 || outs[0].Verified {
					t.Fatalf("misaddressed copy acknowledged: %+v", outs)
				}
				return
			}
			if len(outs) != 1 || !outs[0].Quarantined || !strings.Contains(outs[0].Error, "misaddressed") {
				t.Fatalf("misaddressed copy: outcomes %+v", outs)
			}
		})
	}
}
