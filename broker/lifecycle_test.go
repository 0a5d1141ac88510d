package broker_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
)

// deliver sends e from govOffice and has every recipient receive it.
func deliver(t *testing.T, bus interface {
	Client(...string) *broker.Client
}, e *envelope.Envelope) string {
	t.Helper()
	sender := bus.Client(govOffice)
	res, err := sender.Send(ctxT(t), e)
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range e.To {
		receiveAll(t, bus.Client(to), to)
		waitState(t, sender, res.ID, to, envelope.StateDelivered)
	}
	return res.ID
}

func TestRecallOneAgreesOneRefuses(t *testing.T) {
	bus := threeAgencies(t)
	ctx := ctxT(t)
	id := deliver(t, bus, envelope.New(govOffice, []string{ngheAn, sonLa}, "Văn bản sẽ thu hồi"))
	if _, err := bus.Client(sonLa).Mark(ctx, sonLa, id, envelope.StateAccepted, broker.MarkOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, bus.Client(govOffice), id, sonLa, envelope.StateAccepted)

	recall := envelope.New(govOffice, []string{ngheAn, sonLa}, "Thu hồi văn bản")
	recall.Kind, recall.Refers, recall.Reason = envelope.KindRevoke, id, "Ban hành nhầm"
	deliver(t, bus, recall)
	sender := bus.Client(govOffice)
	for _, who := range []string{ngheAn, sonLa} {
		tr := waitState(t, sender, id, who, envelope.StateRecallRequested)
		if last := tr.History[len(tr.History)-1]; last.Code != "13" || last.Reason != "Ban hành nhầm" {
			t.Fatalf("recall event %+v", last)
		}
	}
	if _, err := bus.Client(ngheAn).Mark(ctx, ngheAn, id, envelope.StateRecallAccepted, broker.MarkOptions{Note: "Đồng ý thu hồi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Client(sonLa).Mark(ctx, sonLa, id, envelope.StateRecallRefused, broker.MarkOptions{Note: "Đã xử lý xong"}); err != nil {
		t.Fatal(err)
	}
	waitState(t, sender, id, ngheAn, envelope.StateRecallAccepted)
	waitState(t, sender, id, sonLa, envelope.StateRecallRefused)
	// A refused recall leaves the recipient free to go on; an accepted one ends it.
	if _, err := bus.Client(sonLa).Mark(ctx, sonLa, id, envelope.StateProcessing, broker.MarkOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Client(ngheAn).Mark(ctx, ngheAn, id, envelope.StateProcessing, broker.MarkOptions{}); !errors.Is(err, envelope.ErrTransition) {
		t.Fatalf("processing after an accepted recall: %v", err)
	}
	// A second revoke cannot reopen a recall the recipient accepted: the
	// state machine refuses it as it refuses a status.
	again := envelope.New(govOffice, []string{ngheAn}, "Thu hồi lần nữa")
	again.Kind, again.Refers, again.Reason = envelope.KindRevoke, id, "Nhắc lại"
	againID := deliver(t, bus, again)
	bustest.Eventually(t, 30*time.Second, "the second revoke refused on the pair", func() error {
		tr, err := sender.Tracking(ctx, id, ngheAn)
		if err != nil {
			return err
		}
		if tr.State != envelope.StateRecallAccepted {
			t.Fatalf("a revoke after an accepted recall moved the pair to %s", tr.State)
		}
		for _, r := range tr.Refused {
			if r.Status == againID && r.State == envelope.StateRecallRequested {
				return nil
			}
		}
		return fmt.Errorf("refused %+v", tr.Refused)
	})
}

func TestUpdateAndReplaceChain(t *testing.T) {
	bus := threeAgencies(t)
	first := deliver(t, bus, envelope.New(govOffice, []string{ngheAn}, "Bản gốc"))
	upd := envelope.New(govOffice, []string{ngheAn}, "Bản cập nhật")
	upd.Kind, upd.Refers = envelope.KindUpdate, first
	second := deliver(t, bus, upd)
	rep := envelope.New(govOffice, []string{ngheAn}, "Bản thay thế")
	rep.Kind, rep.Refers = envelope.KindReplace, second
	third := deliver(t, bus, rep)
	c := bus.Client(govOffice)
	t1, err := c.Tracking(ctxT(t), first, ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := c.Tracking(ctxT(t), second, ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	if len(t1.UpdatedBy) != 1 || t1.UpdatedBy[0] != second || len(t2.ReplacedBy) != 1 || t2.ReplacedBy[0] != third || t2.Refers != first || t2.Kind != envelope.KindUpdate {
		t.Fatalf("chain: first %+v second %+v", t1, t2)
	}
}

// Every transition the state machine refuses is refused by Mark with the
// current state named, and nothing is sent.
func TestRefusedTransitions(t *testing.T) {
	bus := threeAgencies(t)
	ctx := ctxT(t)
	sender := bus.Client(govOffice)
	res, err := sender.Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Chưa nhận"))
	if err != nil {
		t.Fatal(err)
	}
	rc := bus.Client(ngheAn)
	waitState(t, sender, res.ID, ngheAn, envelope.StateSent)
	// Not yet delivered: no business status.
	for _, s := range []envelope.State{envelope.StateAccepted, envelope.StateDone, envelope.StateProcessing} {
		_, err := rc.Mark(ctx, ngheAn, res.ID, s, broker.MarkOptions{})
		var te *envelope.TransitionError
		if !errors.As(err, &te) || te.From != envelope.StateSent {
			t.Fatalf("mark %s while sent: %v", s, err)
		}
	}
	// States the bus sets are not a clerk's to set.
	if _, err := rc.Mark(ctx, ngheAn, res.ID, envelope.StateDelivered, broker.MarkOptions{}); err == nil {
		t.Fatal("a clerk set delivered")
	}
	// Not a recipient.
	if _, err := bus.Client(sonLa).Mark(ctx, sonLa, res.ID, envelope.StateAccepted, broker.MarkOptions{}); !errors.Is(err, broker.ErrNotRecipient) {
		t.Fatalf("mark by a non-recipient: %v", err)
	}
	receiveAll(t, rc, ngheAn)
	waitState(t, sender, res.ID, ngheAn, envelope.StateDelivered)
	if _, err := rc.Mark(ctx, ngheAn, res.ID, envelope.StateRejected, broker.MarkOptions{Note: "Không thuộc thẩm quyền"}); err != nil {
		t.Fatal(err)
	}
	tr := waitState(t, sender, res.ID, ngheAn, envelope.StateRejected)
	if tr.Reason != "Không thuộc thẩm quyền" || tr.Code != "02" {
		t.Fatalf("rejection %+v", tr)
	}
	for _, s := range []envelope.State{envelope.StateAccepted, envelope.StateAssigned, envelope.StateProcessing, envelope.StateDone} {
		if _, err := rc.Mark(ctx, ngheAn, res.ID, s, broker.MarkOptions{}); !errors.Is(err, envelope.ErrTransition) {
			t.Fatalf("mark %s after rejected: %v", s, err)
		}
	}
}

func TestStaffAndOverdue(t *testing.T) {
	bus := threeAgencies(t)
	e := envelope.New(govOffice, []string{ngheAn}, "Quá hạn")
	e.Document = &envelope.Document{DueDate: "2020-01-01"}
	id := deliver(t, bus, e)
	staff := &envelope.Staff{Department: "Văn phòng", Name: "Nguyễn Văn A", Email: "a@nghean.gov.vn", Phone: "0238"}
	if _, err := bus.Client(ngheAn).Mark(ctxT(t), ngheAn, id, envelope.StateAccepted, broker.MarkOptions{Staff: staff}); err != nil {
		t.Fatal(err)
	}
	tr := waitState(t, bus.Client(govOffice), id, ngheAn, envelope.StateAccepted)
	if !tr.Overdue || tr.DueDate != "2020-01-01" {
		t.Fatalf("overdue %v due %q", tr.Overdue, tr.DueDate)
	}
	if got := tr.History[len(tr.History)-1].Staff; got == nil || *got != *staff {
		t.Fatalf("staff %+v", got)
	}
}
