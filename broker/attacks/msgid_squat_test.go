package attacks_test

import (
	"errors"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The record deduplicates copies by message id across the whole stream,
// and NATS permissions do not look at headers. A co-recipient that learnt
// an envelope id from its own copy can store a message of its own, on its
// own subject, under the message id of another recipient's copy; the
// genuine copy stored after it (the sender sending again after a partial
// failure) is then taken for a duplicate. The sender must not be told
// its document went out to a recipient whose copy was never stored.
func TestCopyMessageIDTakenByACoRecipient(t *testing.T) {
	for _, via := range []string{"agency client", "bus client"} {
		t.Run(via, func(t *testing.T) {
			a := newArena(t)
			ctx := ctxT(t)
			sender := a.client(victimSender)
			if via == "bus client" {
				sender = a.admin // the HTTP API's and the compatibility API's sends
			}
			e := envelope.New(victimSender, []string{attacker, victimRecipient}, "Gửi lại sau lỗi giữa chừng")
			raw, err := a.bus.Identity(victimSender).Seal(e)
			if err != nil {
				t.Fatal(err)
			}
			// The first attempt stored the attacker's copy only.
			_, gjs := a.bus.AgencyConnect(t, victimSender)
			first := &nats.Msg{Subject: record.DocSubject(attacker, victimSender), Data: raw, Header: nats.Header{}}
			first.Header.Set(jetstream.MsgIDHeader, record.DocMsgID(e.ID, attacker))
			first.Header.Set(record.HeaderEnvelope, e.ID)
			if _, err := gjs.PublishMsg(ctx, first); err != nil {
				t.Fatal(err)
			}
			// The attacker takes the message id of the victim's copy with a
			// message on its own subject.
			_, ajs := a.bus.AgencyConnect(t, attacker)
			squat := &nats.Msg{Subject: record.DocSubject(attacker2, attacker), Data: []byte("chiếm chỗ"), Header: nats.Header{}}
			squat.Header.Set(jetstream.MsgIDHeader, record.DocMsgID(e.ID, victimRecipient))
			if _, err := ajs.PublishMsg(ctx, squat); err != nil {
				t.Fatal(err)
			}
			// The sender sends again.
			_, err = sender.Send(ctx, e)
			if errors.Is(err, broker.ErrIDTaken) {
				t.Log(err)
				return
			}
			if _, terr := a.admin.Tracking(ctx, e.ID, victimRecipient); terr != nil {
				t.Fatalf("the send answered %v, but %s's copy was never stored (tracking: %v)", err, victimRecipient, terr)
			}
		})
	}
}
