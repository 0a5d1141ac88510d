package s3_test

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/miniotest"
	"github.com/docaxis/docaxis/storage/s3"
	"github.com/docaxis/docaxis/storage/storagetest"
)

// BenchmarkS3Put compares a Put through the store (hashing, blob upload,
// address write) with a plain minio-go PutObject of the same number of
// bytes, on a local MinIO.
//
//	go test ./storage/s3 -run '^$' -bench S3Put -benchtime 5x
func BenchmarkS3Put(b *testing.B) {
	const size = 64 << 20
	srv := miniotest.Start(b)
	st := newStore(b, srv, "bench")
	client := srv.Client(b)
	ctx := context.Background()
	// Fresh bytes for every operation, or the store would deduplicate.
	seed := func() uint64 {
		var s [8]byte
		crand.Read(s[:])
		return binary.LittleEndian.Uint64(s[:])
	}

	b.Run("store", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			obj, err := st.Put(ctx, storagetest.Stream(seed(), size), storage.PutOptions{Size: -1})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := st.Delete(ctx, obj.Key); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		reportMiBps(b, size)
	})
	b.Run("minio-go", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			_, err := client.PutObject(ctx, "bench", "raw", storagetest.Stream(seed(), size), size, minio.PutObjectOptions{})
			if err != nil {
				b.Fatal(err)
			}
		}
		reportMiBps(b, size)
	})
}

func reportMiBps(b *testing.B, size int64) {
	b.ReportMetric(float64(size)*float64(b.N)/(1<<20)/b.Elapsed().Seconds(), "MiB/s")
}

// BenchmarkS3Bench runs s3.Bench, as `docaxis bench --attachments` does.
func BenchmarkS3Bench(b *testing.B) {
	srv := miniotest.Start(b)
	cfg, err := s3.ParseURL(srv.URL("bench"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		res, err := s3.Bench(context.Background(), cfg, 64<<20)
		if err != nil {
			b.Fatal(err)
		}
		b.Log(res)
		b.ReportMetric(res.StoreMiBps, "store-MiB/s")
		b.ReportMetric(res.RawMiBps, "minio-go-MiB/s")
		b.ReportMetric(res.Ratio, "ratio")
	}
}
