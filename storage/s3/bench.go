package s3

import (
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/docaxis/docaxis/storage"
)

// BenchResult compares a Put through the store with a plain minio-go
// PutObject of as many bytes.
type BenchResult struct {
	Size       int64
	StoreTime  time.Duration
	RawTime    time.Duration
	StoreMiBps float64
	RawMiBps   float64
	// Ratio is StoreMiBps / RawMiBps: what hashing, the temporary object
	// and the server-side copy cost.
	Ratio float64
}

func (r BenchResult) String() string {
	return fmt.Sprintf("%d MiB: store %.0f MiB/s, minio-go PutObject %.0f MiB/s, ratio %.2f",
		r.Size>>20, r.StoreMiBps, r.RawMiBps, r.Ratio)
}

// Bench measures one Put of size pseudo-random bytes through the store of
// cfg against one plain minio-go PutObject (known size, default options) of
// as many bytes into the same bucket, then removes both objects. The bytes
// are generated as they are sent, from a random seed: the store cannot
// deduplicate them and no memory holds them.
func Bench(ctx context.Context, cfg Config, size int64) (BenchResult, error) {
	res := BenchResult{Size: size}
	s, err := newStore(ctx, cfg)
	if err != nil {
		return res, err
	}

	raw := "bench/" + crand.Text()
	start := time.Now()
	_, err = s.c.PutObject(ctx, s.bucket, raw, randomStream(size), size, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	res.RawTime = time.Since(start)
	s.cleanup(ctx, raw)
	if err != nil {
		return res, s.wrap("bench: put", raw, err)
	}

	// The store's run must not pay for the collection of the first one's
	// garbage.
	runtime.GC()
	start = time.Now()
	obj, err := s.Put(ctx, randomStream(size), storage.PutOptions{Size: -1, MediaType: "application/octet-stream"})
	res.StoreTime = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	if err := s.Delete(ctx, obj.Key); err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}

	mib := float64(size) / (1 << 20)
	res.RawMiBps = mib / res.RawTime.Seconds()
	res.StoreMiBps = mib / res.StoreTime.Seconds()
	res.Ratio = res.StoreMiBps / res.RawMiBps
	return res, nil
}

// randomStream yields n pseudo-random bytes from a random seed.
func randomStream(n int64) io.Reader {
	var seed [32]byte
	crand.Read(seed[:])
	return io.LimitReader(rand.NewChaCha8(seed), n)
}
