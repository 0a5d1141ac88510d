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

// BenchResult compares Puts through the store with plain minio-go
// PutObjects of as many bytes.
type BenchResult struct {
	Size int64 // of each upload
	// StoreTime and RawTime add up the two runs of each.
	StoreTime  time.Duration
	RawTime    time.Duration
	StoreMiBps float64
	RawMiBps   float64
	// Ratio is StoreMiBps / RawMiBps: what hashing, the smaller parts and
	// writing the content address cost.
	Ratio float64
}

func (r BenchResult) String() string {
	return fmt.Sprintf("%d MiB: store %.0f MiB/s, minio-go PutObject %.0f MiB/s, ratio %.2f",
		r.Size>>20, r.StoreMiBps, r.RawMiBps, r.Ratio)
}

// Bench measures Puts of size pseudo-random bytes through the store of cfg
// against plain minio-go PutObjects (known size, default options) of as
// many bytes into the same bucket: two of each, in the order plain, store,
// store, plain, each object removed after its run. One of each, in a fixed
// order, charged the second run for the server still writing back and
// removing the first one's bytes, and shared machines drift; the
// symmetric order charges both alike. The bytes are generated as they are
// sent, from a random seed: the store cannot deduplicate them and no
// memory holds them.
func Bench(ctx context.Context, cfg Config, size int64) (BenchResult, error) {
	res := BenchResult{Size: size}
	s, err := newStore(ctx, cfg)
	if err != nil {
		return res, err
	}
	for _, store := range []bool{false, true, true, false} {
		// A run must not pay for the collection of the previous one's
		// garbage.
		runtime.GC()
		if store {
			took, err := s.benchPut(ctx, size)
			if err != nil {
				return res, err
			}
			res.StoreTime += took
		} else {
			took, err := s.benchRaw(ctx, size)
			if err != nil {
				return res, err
			}
			res.RawTime += took
		}
	}
	mib := 2 * float64(size) / (1 << 20)
	res.RawMiBps = mib / res.RawTime.Seconds()
	res.StoreMiBps = mib / res.StoreTime.Seconds()
	res.Ratio = res.StoreMiBps / res.RawMiBps
	return res, nil
}

// benchRaw times a plain minio-go PutObject of size bytes, then removes
// the object.
func (s *store) benchRaw(ctx context.Context, size int64) (time.Duration, error) {
	raw := "bench/" + crand.Text()
	start := time.Now()
	_, err := s.c.PutObject(ctx, s.bucket, raw, randomStream(size), size, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	took := time.Since(start)
	s.remove(ctx, raw)
	if err != nil {
		return 0, s.wrap("bench: put", raw, err)
	}
	return took, nil
}

// benchPut times a Put of size bytes, then deletes the object.
func (s *store) benchPut(ctx context.Context, size int64) (time.Duration, error) {
	start := time.Now()
	obj, err := s.Put(ctx, randomStream(size), storage.PutOptions{Size: -1, MediaType: "application/octet-stream"})
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	if err := s.Delete(ctx, obj.Key); err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	return took, nil
}

// randomStream yields n pseudo-random bytes from a random seed.
func randomStream(n int64) io.Reader {
	var seed [32]byte
	crand.Read(seed[:])
	return io.LimitReader(rand.NewChaCha8(seed), n)
}
