package attacks_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// H99, an agency of the national bus, lists in a signed envelope of its
// own the hash of G22's confidential attachment (G22 → H14, both on the
// national) and publishes it straight on the bus with its own credentials,
// addressed to H41, its accomplice on a member bus. Locally such an
// envelope grants nobody access to bytes its sender never held; across the
// federation the bytes must not leave either: the national's federation
// service refuses the copy instead of pushing G22's bytes to H41's bus,
// where H41 would read them.
func TestFederationForwardsNoAttachmentTheSenderNeverHeld(t *testing.T) {
	ctx := bustest.Context(t, 3*time.Minute)
	vn := bustest.StartNational(t, "VN")
	h41 := bustest.StartMember(t, "H41", vn)
	for _, code := range []string{victimSender, victimRecipient, attacker} {
		vn.AddAgency(code, cast[code])
	}
	h41.AddAgency(attacker2, cast[attacker2])
	cvn, c41 := vn.Client(), h41.Client()
	for _, c := range []*broker.Client{cvn, c41} {
		eventually(t, "directory: H41 on bus H41", func() error {
			ag, err := c.LookupAgency(ctx, attacker2)
			if err != nil {
				return err
			}
			if ag.Bus != "H41" {
				return errors.New("served by " + ag.Bus)
			}
			return nil
		})
	}

	secret := "Tài liệu mật " + envelope.NewID()
	res, err := vn.Client(victimSender).Send(ctx, envelope.New(victimSender, []string{victimRecipient}, "Mật: chỉ gửi Sơn La"),
		broker.File{Name: "mat.txt", Reader: strings.NewReader(secret), Size: int64(len(secret))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cvn.WaitState(ctx, res.ID, victimRecipient, envelope.StateSent); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(secret))
	hexSum := hex.EncodeToString(sum[:])

	e := envelope.New(attacker, []string{attacker2}, "Chuyển giúp tệp của người khác")
	e.Attachments = []envelope.Attachment{{Name: "x.txt", MediaType: "text/plain", Size: int64(len(secret)), SHA256: hexSum, Key: storage.Key(hexSum)}}
	raw, err := vn.Identity(attacker).Seal(e)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(vn.URL(), nats.UserCredentials(vn.AgencyCreds(attacker)), nats.CustomInboxPrefix("_INBOX_"+envelope.Token(attacker)))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, record.DocSubject(attacker2, attacker), raw); err != nil {
		t.Fatal(err)
	}

	// Either H41 reads G22's bytes on its own bus, or the national refused
	// the copy (its federation quarantine names the envelope).
	accomplice := h41.Client(attacker2).Store()
	eventually(t, "H99's envelope refused by the national, or G22's bytes on H41", func() error {
		if r, _, err := accomplice.Get(ctx, storage.Key(hexSum)); err == nil {
			b, _ := io.ReadAll(r)
			r.Close()
			t.Fatalf("H41 read on its own bus G22's attachment, which H99 never held, forwarded by the national: %q", b)
		}
		list, err := cvn.QuarantineList(ctx, broker.FederationQuarantine)
		if err != nil {
			return err
		}
		for _, q := range list {
			if q.Envelope == e.ID {
				if !strings.Contains(q.Reason, hexSum) {
					t.Fatalf("quarantined for %q", q.Reason)
				}
				return nil
			}
		}
		return errors.New("not yet")
	})
	// And H41 never got the bytes.
	if _, err := c41.Store().Stat(context.WithoutCancel(ctx), storage.Key(hexSum)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("G22's attachment in H41's store: %v", err)
	}
}
