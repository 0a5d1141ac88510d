package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
)

// The stages of a signed round trip, one at a time, on a live bus (the
// embedded server's work included): `go test -run X -bench Stage
// ./broker/`. Besides wall time they report cpu-us/op, the process's user
// and system CPU per envelope, which a machine shared with other work
// distorts far less than wall time.

// perfMsgs counts the messages the server took in and sent out.
func perfMsgs(b *testing.B, bus *bustest.Bus) int64 {
	v, err := bus.Server.NATS().Varz(nil)
	if err != nil {
		b.Fatal(err)
	}
	return v.InMsgs + v.OutMsgs
}

// perfMeasure runs fn as the timed part and reports its CPU and the
// server's messages (in and out, JetStream's internal ones included) per
// op.
func perfMeasure(b *testing.B, bus *bustest.Bus, fn func()) {
	b.ResetTimer()
	cpu, msgs := bustest.CPU(b), perfMsgs(b, bus)
	fn()
	used, sent := bustest.CPU(b)-cpu, perfMsgs(b, bus)-msgs
	b.StopTimer()
	b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-us/op")
	b.ReportMetric(float64(sent)/float64(b.N), "msgs/op")
}

func perfBus(b *testing.B) (*bustest.Bus, *broker.Client) {
	bus := bustest.Start(b)
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	return bus, bus.Client()
}

func perfDocument(i int) *envelope.Envelope {
	e := envelope.New(govOffice, []string{ngheAn}, fmt.Sprintf("Công văn số %d về việc đo hiệu năng", i))
	e.Body = "Nội dung công văn mẫu dùng cho đo hiệu năng trục liên thông văn bản."
	e.Document = &envelope.Document{CodeNumber: fmt.Sprint(i), CodeNotation: "VPCP-TTĐT", Type: "CV"}
	return e
}

func perfSend(b *testing.B, c *broker.Client, n int) {
	ctx := context.Background()
	for i := range n {
		if _, err := c.Send(ctx, perfDocument(i)); err != nil {
			b.Fatal(err)
		}
	}
}

// perfWaitTracked waits until the tracker's ack floor reaches the end of
// the record.
func perfWaitTracked(b *testing.B, c *broker.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, err := c.JetStream().Stream(ctx, record.Stream)
	if err != nil {
		b.Fatal(err)
	}
	last := st.CachedInfo().State.LastSeq
	for {
		cons, err := c.JetStream().Consumer(ctx, record.Stream, record.TrackerDurable)
		if err != nil {
			b.Fatal(err)
		}
		if cons.CachedInfo().AckFloor.Stream >= last {
			return
		}
		select {
		case <-ctx.Done():
			b.Fatalf("tracker did not reach #%d", last)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// BenchmarkStageSend: Client.Send of a document (validate, id check,
// seal, publish, wait for the stored ack), the tracker stopped.
func BenchmarkStageSend(b *testing.B) {
	bus, c := perfBus(b)
	bus.Service.Tracker.Stop()
	perfSend(b, c, 10) // warm: directory, header caches
	perfMeasure(b, bus, func() { perfSend(b, c, b.N) })
}

// BenchmarkStageMailbox: the recipient's side per copy (verify, received
// marker, signed receipt, ack), fetched in batches, the tracker stopped.
func BenchmarkStageMailbox(b *testing.B) {
	bus, c := perfBus(b)
	bus.Service.Tracker.Stop()
	perfSend(b, c, b.N)
	perfFetch(b, bus, c)
}

// perfFetch measures c taking b.N copies from its mailbox as ngheAn.
func perfFetch(b *testing.B, bus *bustest.Bus, c *broker.Client) {
	mb, err := c.Mailbox(context.Background(), ngheAn, broker.BatchSize(512))
	if err != nil {
		b.Fatal(err)
	}
	perfMeasure(b, bus, func() {
		n, err := mb.Fetch(context.Background(), b.N, 5*time.Second, func(context.Context, *broker.Delivery) error { return nil })
		if err != nil || n != b.N {
			b.Fatalf("fetched %d of %d: %v", n, b.N, err)
		}
	})
}

// BenchmarkStageTracker: the tracker following the record, per round trip
// (a copy: verify, bind its id, "sent"; its receipt: verify, "delivered").
func BenchmarkStageTracker(b *testing.B) {
	bus, c := perfBus(b)
	tr := bus.Service.Tracker
	tr.Stop()
	perfSend(b, c, b.N)
	mb, err := c.Mailbox(context.Background(), ngheAn, broker.BatchSize(512))
	if err != nil {
		b.Fatal(err)
	}
	if n, err := mb.Fetch(context.Background(), b.N, 5*time.Second, func(context.Context, *broker.Delivery) error { return nil }); err != nil || n != b.N {
		b.Fatalf("fetched %d of %d: %v", n, b.N, err)
	}
	perfMeasure(b, bus, func() {
		if err := tr.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		perfWaitTracked(b, c)
	})
	b.Cleanup(tr.Stop)
	// Every pair delivered: the stage did its whole work.
	kv, err := c.JetStream().KeyValue(context.Background(), record.TrackBucket)
	if err != nil {
		b.Fatal(err)
	}
	lister, err := kv.ListKeys(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for range lister.Keys() {
		n++
	}
	if n != b.N {
		b.Fatalf("%d pairs tracked, want %d", n, b.N)
	}
}

// BenchmarkStageMailboxAgency: BenchmarkStageMailbox as an agency's DMS
// runs it, with its own credentials and its own view of the directory
// (which reads the revocations again for copies recorded after its last
// read), on a bus with authentication on.
func BenchmarkStageMailboxAgency(b *testing.B) {
	bus := bustest.Start(b, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	bus.Service.Tracker.Stop()
	perfSend(b, bus.Client(), b.N)
	c, err := broker.Connect(context.Background(), bus.URL(), broker.WithAgencyCredentials(bus.AgencyCreds(ngheAn)),
		broker.WithIdentity(bus.Identity(ngheAn)), broker.WithTrust(signing.NewTrust(bus.CA.Cert)), broker.WithLogger(bustest.Logger()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	perfFetch(b, bus, c)
}
