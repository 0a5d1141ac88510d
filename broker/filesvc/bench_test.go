package filesvc_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/storagetest"
)

// BenchmarkPutGet puts and gets 64 MiB per op through the service and,
// for comparison, straight through the backing store (what the bus's own
// connection does), on one embedded bus.
//
//	go test ./broker/filesvc -run '^$' -bench PutGet -benchtime 5x
func BenchmarkPutGet(b *testing.B) {
	const size = 64 << 20
	e := start(b, filesvc.Config{RatePerSecond: -1})
	for _, bb := range []struct {
		name  string
		store storage.Store
	}{
		{"Service", e.store(b, agencyA)},
		{"Direct", e.backing},
	} {
		b.Run(bb.name, func(b *testing.B) {
			ctx := context.Background()
			var put, get time.Duration
			seed := uint64(0)
			for b.Loop() {
				seed++
				start := time.Now()
				obj, err := bb.store.Put(ctx, storagetest.Stream(seed, size), storage.PutOptions{Size: size})
				if err != nil {
					b.Fatalf("Put: %v", err)
				}
				put += time.Since(start)
				e.grant(b, obj.SHA256, agencyA)
				start = time.Now()
				rc, _, err := bb.store.Get(ctx, obj.Key)
				if err != nil {
					b.Fatalf("Get: %v", err)
				}
				if _, err := io.Copy(io.Discard, storage.NewVerifyingReader(rc, obj.Key, size, obj.SHA256)); err != nil {
					b.Fatalf("read: %v", err)
				}
				rc.Close()
				get += time.Since(start)
			}
			mib := float64(b.N) * size / (1 << 20)
			b.ReportMetric(mib/put.Seconds(), "put-MiB/s")
			b.ReportMetric(mib/get.Seconds(), "get-MiB/s")
			b.ReportMetric(2*mib/(put+get).Seconds(), "MiB/s")
		})
	}
}
