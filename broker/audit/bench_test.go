package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// benchBus is a bare bus (server and streams, no tracker competing for the
// CPU) holding a long history of real signed envelopes, all chained.
type benchBus struct {
	dir    string
	srv    *bus.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	trust  *signing.Trust
	n      int
	signed time.Duration
}

var (
	benchOnce    sync.Once
	benchFixture *benchBus
	benchErr     error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchFixture != nil {
		benchFixture.nc.Close()
		benchFixture.srv.Shutdown()
		os.RemoveAll(benchFixture.dir)
	}
	os.Exit(code)
}

func benchRecords() int {
	if n, err := strconv.Atoi(os.Getenv("DOCAXIS_AUDIT_BENCH_RECORDS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// benchFanout is how many recipients each benchmark envelope has
// (DOCAXIS_AUDIT_BENCH_FANOUT, default 1: every record its own envelope,
// the worst case). A document to k agencies is k records of the same
// signed bytes, as the bus stores it.
func benchFanout() int {
	if k, err := strconv.Atoi(os.Getenv("DOCAXIS_AUDIT_BENCH_FANOUT")); err == nil && k > 0 && k <= 3 {
		return k
	}
	return 1
}

func setupBench(n int) (*benchBus, error) {
	dir, err := os.MkdirTemp("", "docaxis-audit-bench")
	if err != nil {
		return nil, err
	}
	bb := &benchBus{dir: dir, n: n}
	if bb.srv, err = bus.StartServer(bus.ServerConfig{Dir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0"}); err != nil {
		return nil, err
	}
	if bb.nc, err = nats.Connect(bb.srv.ClientURL()); err != nil {
		return nil, err
	}
	if bb.js, err = jetstream.New(bb.nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := bus.Setup(ctx, bb.js, bus.BusConfig{}); err != nil {
		return nil, err
	}
	ca, err := signing.NewCA("bench CA", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	bb.trust = signing.NewTrust(ca.Cert)
	codes := []string{"000.00.00.G22", "000.00.00.H41", "000.00.00.H14", "000.00.00.H29"}
	var ids []*signing.Identity
	for _, c := range codes {
		id, err := ca.Issue(c, c, signing.IssueOptions{})
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	// With fan-out 1 every record is its own signed envelope: nothing is
	// verified twice.
	k := benchFanout()
	start := time.Now()
	raws := make([][]byte, (n+k-1)/k)
	var wg sync.WaitGroup
	var signErr error
	var mu sync.Mutex
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(raws); i += workers {
				from := ids[i%len(ids)]
				var to []string
				for j := 1; j <= k; j++ {
					to = append(to, codes[(i+j)%len(codes)])
				}
				e := envelope.New(from.Agency, to, fmt.Sprintf("Công văn số %d về việc kiểm tra", i))
				e.Body = "Nội dung công văn để kiểm tra hiệu năng phát lại nhật ký."
				raw, err := from.Seal(e)
				if err != nil {
					mu.Lock()
					signErr = err
					mu.Unlock()
					return
				}
				raws[i] = raw
			}
		})
	}
	wg.Wait()
	if signErr != nil {
		return nil, signErr
	}
	bb.signed = time.Since(start)
	published := 0
	for _, raw := range raws {
		e, _ := envelope.Peek(raw)
		for _, to := range e.To {
			if published == n {
				break
			}
			msg := &nats.Msg{Subject: record.DocSubject(to, e.From), Data: raw}
			if _, err := bb.js.PublishMsgAsync(msg); err != nil {
				return nil, err
			}
			published++
			if published%4096 == 0 {
				<-bb.js.PublishAsyncComplete()
			}
		}
	}
	<-bb.js.PublishAsyncComplete()
	key, err := audit.NewKey(ca, time.Hour)
	if err != nil {
		return nil, err
	}
	ch, err := audit.StartChainer(ctx, bb.js, audit.ChainerConfig{Key: key, Interval: time.Hour, Logger: nil})
	if err != nil {
		return nil, err
	}
	if _, err := ch.Checkpoint(ctx); err != nil {
		return nil, err
	}
	if _, err := ch.Stop(ctx); err != nil {
		return nil, err
	}
	return bb, nil
}

// BenchmarkReplayVerify replays 100,000 records (DOCAXIS_AUDIT_BENCH_RECORDS)
// with every signature, certificate chain and chain link checked, and
// reports records per second and the share of the workers' time spent in
// signature and certificate checks.
func BenchmarkReplayVerify(b *testing.B) {
	benchOnce.Do(func() { benchFixture, benchErr = setupBench(benchRecords()) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	bb := benchFixture
	r, err := audit.NewReader(bb.js, audit.ReaderConfig{Verifier: &signing.Verifier{Trust: bb.trust}})
	if err != nil {
		b.Fatal(err)
	}
	var total, verify time.Duration
	var shares float64
	cpu0 := bustest.CPU(b)
	b.ResetTimer()
	for range b.N {
		n := 0
		st, err := r.Replay(context.Background(), audit.Query{}, func(rec *audit.Record) error {
			if !rec.Verified {
				return fmt.Errorf("seq %d: %s", rec.Seq, rec.Reason)
			}
			n++
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		if n != bb.n {
			b.Fatalf("replayed %d records, want %d", n, bb.n)
		}
		total += st.Elapsed
		verify += st.VerifyTime
		shares += st.VerifyShare()
	}
	b.StopTimer()
	cpu := bustest.CPU(b) - cpu0
	// The machine is shared: CPU time per record tells what two idle cores
	// would do, wall time what this run got.
	b.ReportMetric(float64(cpu.Microseconds())/float64(bb.n*b.N), "cpu-µs/record")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0))*float64(bb.n*b.N)/cpu.Seconds(), "records/s-at-full-cpu")
	b.ReportMetric(float64(bb.n*b.N)/total.Seconds(), "records/s")
	b.ReportMetric(100*shares/float64(b.N), "%verify")
	b.ReportMetric(float64(verify.Nanoseconds())/float64(bb.n*b.N), "verify-ns/record")
}
