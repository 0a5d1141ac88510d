package bus_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
)

// With a publish rate in force, the recipient's side asks the bus for the
// verdict on each copy before handing it over. A copy the gate of the
// answering process has judged is in the record: the check is answered
// without reading the record's end. Before, under a steady flow (each
// copy newer than the last read of the end), every check read it again:
// one stream info request per copy.
func TestRateCheckOfAJudgedCopyReadsNoRecordEnd(t *testing.T) {
	b := bustest.Start(t)
	b.AddAgency(govOffice, "Văn phòng Chính phủ")
	b.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	ctx := bustest.Context(t, 2*time.Minute)
	sender, rcpt := b.Client(govOffice), b.Client(ngheAn)
	l := broker.DefaultLimits
	l.PublishRate = 100
	if err := b.Service.Client.SetLimits(ctx, l); err != nil {
		t.Fatal(err)
	}
	bustest.Eventually(t, 30*time.Second, "the rate at the recipient's client", func() error {
		if rcpt.Limits().PublishRate != l.PublishRate {
			return fmt.Errorf("rate %g", rcpt.Limits().PublishRate)
		}
		return nil
	})
	mb, err := rcpt.Mailbox(ctx, ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	nc, js := b.Connect(t)
	stream, err := js.Stream(ctx, record.Stream)
	if err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int32
	if _, err := nc.Subscribe("$JS.API.STREAM.INFO."+record.Stream, func(*nats.Msg) { reads.Add(1) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	const n = 12
	for i := range n {
		if _, err := sender.Send(ctx, envelope.New(govOffice, []string{ngheAn}, fmt.Sprintf("Công văn %d", i))); err != nil {
			t.Fatal(err)
		}
		m, err := stream.GetLastMsgForSubject(ctx, record.DocSubject(ngheAn, govOffice))
		if err != nil {
			t.Fatal(err)
		}
		bustest.Eventually(t, 30*time.Second, "the gate's verdict", func() error {
			if got := bus.GateJudgedTo(b.Service); got < m.Sequence {
				return fmt.Errorf("judged to #%d, copy #%d", got, m.Sequence)
			}
			return nil
		})
		got, err := mb.Fetch(ctx, 1, 10*time.Second, func(context.Context, *broker.Delivery) error { return nil })
		if err != nil || got != 1 {
			t.Fatalf("copy %d: fetched %d: %v", i, got, err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if r := reads.Load(); r != 0 {
		t.Errorf("%d reads of the record's end for %d checks of copies the gate had judged", r, n)
	}
}
