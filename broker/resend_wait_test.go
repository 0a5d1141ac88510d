package broker_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// A sender that asks WaitState for "delivered" after the recipient already
// went past it (delivered, then accepted) must be told it was reached: the
// publisher example waits for each recipient in turn, and a recipient that
// accepts at once is past "delivered" by the time its turn comes.
func TestWaitStateSeesAStateReachedBeforeTheWait(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	sender := bus.Client(govOffice)
	rcpt := bus.Client(ngheAn)
	ctx := ctxT(t)

	res, err := sender.Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Chờ trạng thái đã qua"))
	if err != nil {
		t.Fatal(err)
	}
	if outs := receiveAll(t, rcpt, ngheAn); len(outs) != 1 || !outs[0].Verified {
		t.Fatalf("outcomes = %+v", outs)
	}
	waitState(t, sender, res.ID, ngheAn, envelope.StateDelivered)
	if _, err := rcpt.Mark(ctx, ngheAn, res.ID, envelope.StateAccepted, broker.MarkOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, sender, res.ID, ngheAn, envelope.StateAccepted)

	for name, c := range map[string]*broker.Client{"agency client": sender, "bus client": bus.Client(govOffice, ngheAn)} {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		tr, err := c.WaitState(wctx, res.ID, ngheAn, envelope.StateDelivered)
		cancel()
		if err != nil {
			t.Errorf("%s: WaitState(delivered) after the pair went on to accepted: %v", name, err)
			continue
		}
		if tr.Reached(envelope.StateDelivered).IsZero() {
			t.Errorf("%s: tracking returned has no delivered event: %+v", name, tr.History)
		}
	}
}

// Sending an envelope id again stores nothing twice (Send's promise), also
// once the record's dedup window has passed since the first send: an
// application retrying a send it believes failed, hours later, must not
// put a second copy with the same id in the recipient's mailbox.
func TestSendAgainAfterTheDedupWindowStoresNothingTwice(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	ctx := ctxT(t)
	_, js := bus.Connect(t)
	st, err := js.Stream(ctx, record.Stream)
	if err != nil {
		t.Fatal(err)
	}
	// The window the deployment sets (two hours by default), made short.
	cfg := st.CachedInfo().Config
	cfg.Duplicates = time.Second
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	creds, ks := addSystem(t, bus, "dms-a")
	// Bound since before the envelope was built (below).
	res, err := bus.Service.Client.ImportAgencies(ctx, []broker.ImportLine{{Line: 1, Agency: broker.Agency{Code: servedCode(1), Name: "Đơn vị", System: "dms-a"}, Fields: []string{"system"}}},
		broker.ImportOptions{Bind: func(b signing.Binding) (string, error) {
			b.From = time.Now().UTC().Add(-2 * time.Hour)
			return bus.CA.SignBinding(b)
		}})
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("bind %s to dms-a: %v %v", servedCode(1), err, res)
	}
	senders := map[string]struct {
		c    *broker.Client
		from string
	}{
		"agency client": {bus.Client(govOffice), govOffice},
		"bus client":    {bus.Client(govOffice, ngheAn), govOffice},
		"system client": {systemClient(t, bus, creds, ks), servedCode(1)},
	}
	for name, s := range senders {
		t.Run(name, func(t *testing.T) {
			sender := s.c
			e := envelope.New(s.from, []string{ngheAn}, "Gửi lại sau cửa sổ chống trùng")
			// Built an hour before it is sent, as an application's queued
			// document: a resend may come after the window (the short one
			// set here stands for it). A younger envelope is asked about
			// by no one, its first copies' ids are still remembered.
			e.Created = time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
			res, err := sender.Send(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			waitState(t, bus.Service.Client, res.ID, ngheAn, envelope.StateSent)
			time.Sleep(2 * cfg.Duplicates) // past the window
			_, err = sender.Send(ctx, e)
			if !errors.Is(err, broker.ErrDuplicate) {
				t.Errorf("sending %s again after the dedup window: err = %v, want ErrDuplicate", res.ID, err)
			}
			copies := 0
			for seq := uint64(1); ; seq++ {
				msg, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(record.MailboxFilter(ngheAn)))
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				seq = msg.Sequence
				if msg.Header.Get(record.HeaderEnvelope) == res.ID {
					copies++
				}
			}
			if copies != 1 {
				t.Errorf("mailbox of %s holds %d copies of %s, want 1", ngheAn, copies, res.ID)
			}
		})
	}
}

// A document system's copy whose message id another agency's message took
// first is not stored: the bus's system proxy, which publishes it, tells
// the system so instead of answering "duplicate" (attacks'
// TestCopyMessageIDTakenByACoRecipient for an agency's and the bus's
// client).
func TestSystemCopyMessageIDTaken(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	bus.AddAgency(sonLa, "UBND tỉnh Sơn La")
	ctx := ctxT(t)
	creds, ks := addSystem(t, bus, "dms-a")
	serveAgencies(t, bus, "dms-a", servedCode(1))
	e := envelope.New(servedCode(1), []string{ngheAn, sonLa}, "Bản sao bị chiếm mã")
	_, js := bus.AgencyConnect(t, ngheAn)
	squat := &nats.Msg{Subject: record.DocSubject(govOffice, ngheAn), Data: []byte("chiếm chỗ"), Header: nats.Header{}}
	squat.Header.Set(jetstream.MsgIDHeader, record.DocMsgID(e.ID, sonLa))
	if _, err := js.PublishMsg(ctx, squat); err != nil {
		t.Fatal(err)
	}
	_, err := systemClient(t, bus, creds, ks).Send(ctx, e)
	if !errors.Is(err, broker.ErrIDTaken) {
		t.Fatalf("the system's send answered %v, want ErrIDTaken for %s's copy", err, sonLa)
	}
	t.Log(err)
}

// A handler that panics on one document is that copy's failure, retried
// later, not the end of the process: the mailbox goes on with the next
// copy, and the failed one is handed over once the handler takes it.
func TestHandlerPanicIsTheCopysFailure(t *testing.T) {
	bus := threeAgencies(t)
	ctx := ctxT(t)
	poison, err := bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Văn bản làm ứng dụng hỏng"))
	if err != nil {
		t.Fatal(err)
	}
	next, err := bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Văn bản kế tiếp"))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := bus.Client(ngheAn).Mailbox(ctx, ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	panicked, handed := 0, map[string]int{}
	handler := func(_ context.Context, d *broker.Delivery) error {
		if d.Envelope.ID == poison.ID && panicked == 0 {
			panicked++
			panic("index out of range [3] with length 3")
		}
		handed[d.Envelope.ID]++
		return nil
	}
	bustest.Eventually(t, 30*time.Second, "both handed over", func() error {
		if _, err := mb.Fetch(ctx, 2, time.Second, handler); err != nil {
			return err
		}
		if handed[poison.ID] != 1 || handed[next.ID] != 1 {
			return fmt.Errorf("handed over %v", handed)
		}
		return nil
	})
	if panicked != 1 {
		t.Fatalf("the handler panicked %d times", panicked)
	}
	if _, err := bus.Service.Client.WaitState(ctx, poison.ID, ngheAn, envelope.StateDelivered); err != nil {
		t.Fatal(err)
	}
}
