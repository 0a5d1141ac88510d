package attacks_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

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

// The tracking service's copy operation reads a record message for an
// agency: it answers only whether the message is the asker's own copy
// for the recipient it names, tells nothing of whose it is otherwise,
// refuses malformed questions, and is not reachable on another agency's
// subject.
func TestTrackCopyOperationTellsNothingOfOthers(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	victimID, _ := a.victimSend()
	victimCopy, err := a.admin.Tracking(ctx, victimID, victimRecipient)
	if err != nil {
		t.Fatal(err)
	}
	own, err := a.client(attacker).Send(ctx, envelope.New(attacker, []string{attacker2}, "Của chính mình"))
	if err != nil {
		t.Fatal(err)
	}
	ownCopy, err := a.admin.WaitState(ctx, own.ID, attacker2, envelope.StateSent)
	if err != nil {
		t.Fatal(err)
	}
	nc, v := a.raw(attacker)
	ask := func(subject, body string) (*broker.TrackReply, error) {
		m, err := nc.Request(subject, []byte(body), 2*time.Second)
		if err != nil {
			return nil, err
		}
		var rep broker.TrackReply
		if err := json.Unmarshal(m.Data, &rep); err != nil {
			t.Fatalf("answer %q: %v", m.Data, err)
		}
		return &rep, nil
	}
	mine := record.TrackServiceSubject(attacker, record.TrackOpCopy)
	for _, c := range []struct {
		name, body, want string
	}{
		{"its own copy", fmt.Sprintf(`{"id":%q,"recipient":%q,"seq":%d}`, own.ID, attacker2, ownCopy.Seq), ""},
		{"the victim's copy", fmt.Sprintf(`{"id":%q,"recipient":%q,"seq":%d}`, victimID, victimRecipient, victimCopy.Seq), record.CodeIDTaken},
		{"no sequence", fmt.Sprintf(`{"id":%q,"recipient":%q}`, victimID, victimRecipient), record.CodeBadRequest},
		{"not an id", fmt.Sprintf(`{"id":"x","recipient":%q,"seq":1}`, victimRecipient), record.CodeBadRequest},
		{"unknown field", fmt.Sprintf(`{"id":%q,"recipient":%q,"seq":1,"subject":"axis.doc.>"}`, victimID, victimRecipient), record.CodeBadRequest},
	} {
		rep, err := ask(mine, c.body)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if rep.Error != c.want {
			t.Errorf("%s: answered %q (%s), want %q", c.name, rep.Error, rep.Message, c.want)
		}
		// The id is the asker's own words; whose message it is is not.
		for _, secret := range []string{victimSender, envelope.Token(victimSender)} {
			if strings.Contains(rep.Message, secret) {
				t.Errorf("%s: the answer names %s: %s", c.name, secret, rep.Message)
			}
		}
	}
	// The victim's own subject is not the attacker's to ask on.
	if _, err := ask(record.TrackServiceSubject(victimSender, record.TrackOpCopy),
		fmt.Sprintf(`{"id":%q,"recipient":%q,"seq":%d}`, victimID, victimRecipient, victimCopy.Seq)); err == nil {
		t.Error("asked on the victim's subject and got an answer")
	}
	if !v.saw(t, record.TrackServiceSubject(victimSender, record.TrackOpCopy)) {
		t.Error("no permission violation for the victim's subject")
	}
}
