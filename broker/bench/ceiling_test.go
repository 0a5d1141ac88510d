package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
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

// bare runs cfg.N bare round trips (see BenchmarkCeiling) through raw's
// pipeline: the sender signs and publishes without waiting, the recipient
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
	const track = "BARETRACK"
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: track, Storage: jetstream.FileStorage}); err != nil {
		return 0, err
	}
	defer js.DeleteKeyValue(context.WithoutCancel(ctx), track)
	stallWait := jetstream.WithStallWait(time.Minute)
	took, err := pipeline{
		stream:   "BAREBENCH",
		envelope: func(i int) ([]byte, error) { return from.Seal(document(i)) },
		answer: func(m jetstream.Msg) ([]byte, error) {
			s, err := envelope.Open(m.Data())
			if err != nil {
				return nil, fmt.Errorf("open copy: %w", err)
			}
			rcpt := envelope.NewStatus(recipient, sender, s.Envelope.ID, envelope.StateDelivered)
			rcpt.Status.Digest = s.Digest()
			return to.Seal(rcpt)
		},
		receipt: func(m jetstream.Msg) error {
			s, err := envelope.Open(m.Data())
			if err != nil {
				return fmt.Errorf("open receipt: %w", err)
			}
			st := s.Envelope.Status
			entry, err := json.Marshal(map[string]any{"envelope": st.Of, "sender": sender, "recipient": recipient, "state": st.State, "at": s.Envelope.Created})
			if err != nil {
				return err
			}
			_, err = js.PublishAsync(record.KVSubject(track, sender+"."+st.Of+"."+recipient), entry, stallWait)
			return err
		},
	}.run(ctx, js, cfg.N, cfg.Replicas)
	if err != nil {
		return 0, err
	}
	return float64(cfg.N) / took.Seconds(), nil
}
