package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkCeiling puts a docaxis round trip between its floor and its
// ceiling on the machine of the run, each on a fresh embedded server with
// authentication on, as `docaxis serve` runs it:
//
//		go test -run X -bench Ceiling -benchtime 20000x ./broker/bench/
//
//	  - raw: plain JetStream, as `docaxis bench` measures it;
//	  - bare: the bare prototype issue 18 quotes, the work no signed round
//	    trip can skip: sign, publish, verify, signed receipt back, verify,
//	    one tracking write; none of the bus's checks (chain, validity,
//	    revocation, the tracker's own verification of the copy, id binding,
//	    received marker, the "sent" write);
//	  - docaxis: `docaxis bench`'s throughput phase, every check kept.
//
// Each reports roundtrips/s and cpu-us/op, the process's CPU (client,
// bus and server alike) per round trip.
func BenchmarkCeiling(b *testing.B) {
	// The sizes of `docaxis bench`'s messages, for raw.
	sized := func() *Result { return &Result{EnvelopeBytes: 2380, ReceiptBytes: 2314} }
	for _, tc := range []struct {
		name string
		run  func(context.Context, string, Config) (float64, error)
	}{
		{"raw", func(ctx context.Context, url string, cfg Config) (float64, error) {
			res := sized()
			err := raw(ctx, url, cfg, res)
			return res.RawPerSec, err
		}},
		{"bare", bare},
		{"docaxis", func(ctx context.Context, url string, cfg Config) (float64, error) {
			res := sized()
			err := roundTrips(ctx, url, cfg, res)
			return res.RoundtripsPerSec, err
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := Config{N: b.N, Rate: 1000, Latency: 1, Workers: 64, KeyType: signing.KeyECDSA, Dir: b.TempDir(),
				Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			url, stop, err := startEmbedded(&cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer stop()
			b.ResetTimer()
			cpu := bustest.CPU(b)
			rate, err := tc.run(context.Background(), url, cfg)
			if err != nil {
				b.Fatal(err)
			}
			used := bustest.CPU(b) - cpu
			b.StopTimer()
			b.ReportMetric(rate, "roundtrips/s")
			b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}

// bare runs cfg.N bare round trips (see BenchmarkCeiling), pipelined as
// raw is: the sender signs and publishes without waiting, the recipient
// verifies each copy and publishes its signed receipt, the sender's side
// verifies the receipt and writes the pair's tracking entry.
func bare(ctx context.Context, url string, cfg Config) (float64, error) {
	ca, err := signing.NewCA("bare CA", 24*time.Hour)
	if err != nil {
		return 0, err
	}
	from, err := ca.Issue(sender, sender, signing.IssueOptions{KeyType: cfg.KeyType})
	if err != nil {
		return 0, err
	}
	to, err := ca.Issue(recipient, recipient, signing.IssueOptions{KeyType: cfg.KeyType})
	if err != nil {
		return 0, err
	}
	nc, err := nats.Connect(url, cfg.NATSOptions...)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "BAREBENCH", Subjects: []string{"barebench.>"}, Storage: jetstream.FileStorage}); err != nil {
		return 0, err
	}
	defer js.DeleteStream(context.WithoutCancel(ctx), "BAREBENCH")
	const track = "BARETRACK"
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: track, Storage: jetstream.FileStorage}); err != nil {
		return 0, err
	}
	defer js.DeleteKeyValue(context.WithoutCancel(ctx), track)
	mk := func(name, subj string) (jetstream.Consumer, error) {
		return js.CreateOrUpdateConsumer(ctx, "BAREBENCH", jetstream.ConsumerConfig{Durable: name, FilterSubject: subj, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10000})
	}
	envCons, err := mk("env", "barebench.env")
	if err != nil {
		return 0, err
	}
	rcptCons, err := mk("rcpt", "barebench.rcpt")
	if err != nil {
		return 0, err
	}
	stallWait := jetstream.WithStallWait(time.Minute)
	failed := make(chan error, 1)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	c1, err := envCons.Consume(func(m jetstream.Msg) {
		s, err := envelope.Open(m.Data())
		if err != nil {
			fail(fmt.Errorf("bare: open copy: %w", err))
			return
		}
		rcpt := envelope.NewStatus(recipient, sender, s.Envelope.ID, envelope.StateDelivered)
		rcpt.Status.Digest = s.Digest()
		rb, err := to.Seal(rcpt)
		if err != nil {
			fail(err)
			return
		}
		if _, err := js.PublishAsync("barebench.rcpt", rb, stallWait); err != nil {
			fail(err)
			return
		}
		_ = m.Ack()
	}, jetstream.PullMaxMessages(512))
	if err != nil {
		return 0, err
	}
	defer c1.Stop()
	var got atomic.Int64
	done := make(chan struct{})
	c2, err := rcptCons.Consume(func(m jetstream.Msg) {
		s, err := envelope.Open(m.Data())
		if err != nil {
			fail(fmt.Errorf("bare: open receipt: %w", err))
			return
		}
		st := s.Envelope.Status
		entry, err := json.Marshal(map[string]any{"envelope": st.Of, "sender": sender, "recipient": recipient, "state": st.State, "at": s.Envelope.Created})
		if err != nil {
			fail(err)
			return
		}
		if _, err := js.PublishAsync(record.KVSubject(track, sender+"."+st.Of+"."+recipient), entry, stallWait); err != nil {
			fail(err)
			return
		}
		_ = m.Ack()
		if got.Add(1) == int64(cfg.N) {
			close(done)
		}
	}, jetstream.PullMaxMessages(512))
	if err != nil {
		return 0, err
	}
	defer c2.Stop()
	start := time.Now()
	for i := 0; i < cfg.N; i++ {
		raw, err := from.Seal(document(i))
		if err != nil {
			return 0, err
		}
		if _, err := js.PublishAsync("barebench.env", raw, stallWait); err != nil {
			return 0, err
		}
	}
	select {
	case <-done:
	case err := <-failed:
		return 0, err
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("bare bench: %d of %d", got.Load(), cfg.N)
	}
	select { // the last tracking writes stored
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return 0, fmt.Errorf("bare bench: tracking writes not stored")
	}
	return float64(cfg.N) / time.Since(start).Seconds(), nil
}
