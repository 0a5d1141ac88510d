package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/miniotest"
	"github.com/docaxis/docaxis/storage/s3"
	"github.com/docaxis/docaxis/storage/storagetest"
)

// s3Backend hands the conformance suite one bucket per test on a shared
// MinIO and remembers, per store, its bucket and temporary names.
type s3Backend struct {
	srv    *miniotest.Server
	client *minio.Client
	n      atomic.Int64
	mu     sync.Mutex
	stores map[storage.Store]s3Bucket
}

type s3Bucket struct {
	name      string
	tempNames func() []string
}

func newS3Backend(t *testing.T) *s3Backend {
	srv := miniotest.Start(t)
	return &s3Backend{srv: srv, client: srv.Client(t), stores: map[storage.Store]s3Bucket{}}
}

func (b *s3Backend) newStore(t *testing.T) storage.Store {
	bucket := fmt.Sprintf("conformance-%d", b.n.Add(1))
	st := newStore(t, b.srv, bucket)
	b.mu.Lock()
	b.stores[st] = s3Bucket{name: bucket, tempNames: s3.TempNames(st)}
	b.mu.Unlock()
	return st
}

func (b *s3Backend) bucket(st storage.Store) s3Bucket {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stores[st]
}

func newStore(t testing.TB, srv *miniotest.Server, bucket string) storage.Store {
	t.Helper()
	cfg, err := s3.ParseURL(srv.URL(bucket))
	if err != nil {
		t.Fatalf("ParseURL(%s): %v", srv.URL(bucket), err)
	}
	st, err := s3.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg, err)
	}
	return st
}

// tamper rewrites the object under key with one byte flipped, straight
// into the bucket.
func (b *s3Backend) tamper(t *testing.T, st storage.Store, key string) {
	bucket := b.bucket(st).name
	o, err := b.client.GetObject(t.Context(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("tamper: get %s: %v", key, err)
	}
	data, err := io.ReadAll(o)
	o.Close()
	if err != nil {
		t.Fatalf("tamper: read %s: %v", key, err)
	}
	data[len(data)/2] ^= 0xff
	if _, err := b.client.PutObject(t.Context(), bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("tamper: put %s: %v", key, err)
	}
}

// leftovers reports temporary objects and the unfinished multipart uploads
// of every temporary name the store used.
func (b *s3Backend) leftovers(t *testing.T, st storage.Store) []string {
	ctx := t.Context()
	bk := b.bucket(st)
	var left []string
	for o := range b.client.ListObjectsIter(ctx, bk.name, minio.ListObjectsOptions{Prefix: s3.TempPrefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("leftovers: list: %v", o.Err)
		}
		left = append(left, "object "+o.Key)
	}
	// MinIO lists uploads by exact name, or all of them with no prefix.
	for _, name := range append(bk.tempNames(), "") {
		for u := range b.client.ListIncompleteUploads(ctx, bk.name, name, name == "") {
			if u.Err != nil {
				t.Fatalf("leftovers: list uploads of %s: %v", name, u.Err)
			}
			left = append(left, "multipart upload "+u.Key+" "+u.UploadID)
		}
	}
	return left
}

func TestConformance(t *testing.T) {
	b := newS3Backend(t)
	storagetest.Run(t, b.newStore, storagetest.Options{
		Tamper:    b.tamper,
		Leftovers: b.leftovers,
	})
}

func TestContentType(t *testing.T) {
	srv := miniotest.Start(t)
	st := newStore(t, srv, "content-type")
	ctx := t.Context()
	for _, tt := range []struct{ mediaType, want string }{
		{"application/pdf", "application/pdf"},
		{"", "application/octet-stream"},
	} {
		data := []byte("%PDF-1.7 " + tt.mediaType)
		obj, err := st.Put(ctx, bytes.NewReader(data), storage.PutOptions{Size: int64(len(data)), MediaType: tt.mediaType})
		if err != nil {
			t.Fatal(err)
		}
		info, err := srv.Client(t).StatObject(ctx, "content-type", obj.Key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if info.ContentType != tt.want {
			t.Errorf("media type %q: Content-Type = %q, want %q", tt.mediaType, info.ContentType, tt.want)
		}
	}
}

// TestMultipartCopy takes the path of objects over 5 GiB, a server-side
// copy in parts, with the part size lowered to 5 MiB.
func TestMultipartCopy(t *testing.T) {
	srv := miniotest.Start(t)
	st := newStore(t, srv, "multipart-copy")
	s3.SetCopyPartSize(st, 5<<20)
	ctx := t.Context()
	const size = 20 << 20
	obj, err := st.Put(ctx, storagetest.Stream(1, size), storage.PutOptions{Size: -1, MediaType: "video/mp4"})
	if err != nil {
		t.Fatal(err)
	}
	if want := storagetest.StreamSHA256(1, size); obj.SHA256 != want || obj.Size != size || obj.ModTime.IsZero() {
		t.Fatalf("Put = %+v, want SHA256 %s, size %d and a ModTime", obj, want, size)
	}
	info, err := srv.Client(t).StatObject(ctx, "multipart-copy", obj.Key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.ContentType != "video/mp4" {
		t.Errorf("Content-Type = %q after a multipart copy, want video/mp4", info.ContentType)
	}
	if !strings.Contains(info.ETag, "-") {
		t.Errorf("ETag %q is not a multipart ETag: the copy was not in parts", info.ETag)
	}
	rc, _, err := st.Get(ctx, obj.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, storage.NewVerifyingReader(rc, obj.Key, obj.Size, obj.SHA256)); err != nil {
		t.Fatal(err)
	}
}

func TestNewCreatesBucket(t *testing.T) {
	srv := miniotest.Start(t)
	c := srv.Client(t)
	ctx := t.Context()
	if ok, _ := c.BucketExists(ctx, "fresh"); ok {
		t.Fatal("bucket exists before New")
	}
	newStore(t, srv, "fresh")
	if ok, err := c.BucketExists(ctx, "fresh"); !ok || err != nil {
		t.Fatalf("bucket after New: exists=%v, err=%v", ok, err)
	}
	newStore(t, srv, "fresh") // an existing bucket is fine
}

func TestSweep(t *testing.T) {
	srv := miniotest.Start(t)
	st := newStore(t, srv, "sweep")
	c := srv.Client(t)
	ctx := t.Context()
	// What a process killed between upload and copy leaves.
	for _, name := range []string{s3.TempPrefix + "a", s3.TempPrefix + "b"} {
		if _, err := c.PutObject(ctx, "sweep", name, strings.NewReader("partial"), 7, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// And what a process killed mid-upload leaves.
	core := &minio.Core{Client: c}
	if _, err := core.NewMultipartUpload(ctx, "sweep", s3.TempPrefix+"c", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	kept, err := st.Put(ctx, strings.NewReader("attachment"), storage.PutOptions{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	sw := st.(storage.Sweeper)
	if n, err := sw.Sweep(ctx, time.Hour, false); err != nil || n != 0 {
		t.Fatalf("Sweep(1h) = %d, %v; want nothing that young", n, err)
	}
	time.Sleep(10 * time.Millisecond)
	if n, err := sw.Sweep(ctx, time.Nanosecond, true); err != nil || n != 3 {
		t.Fatalf("Sweep(dry run) = %d, %v; want 3", n, err)
	}
	if n, err := sw.Sweep(ctx, time.Nanosecond, false); err != nil || n != 3 {
		t.Fatalf("Sweep = %d, %v; want 3", n, err)
	}
	for o := range c.ListObjectsIter(ctx, "sweep", minio.ListObjectsOptions{Prefix: s3.TempPrefix, Recursive: true}) {
		t.Errorf("left after Sweep: %s %v", o.Key, o.Err)
	}
	for u := range c.ListIncompleteUploads(ctx, "sweep", "", true) {
		t.Errorf("upload left after Sweep: %s %v", u.Key, u.Err)
	}
	if _, err := st.Stat(ctx, kept.Key); err != nil {
		t.Errorf("Sweep touched a stored object: %v", err)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// TestUnavailable: an endpoint that refuses or never answers gives
// ErrUnavailable, within the retries' backoff or the caller's deadline.
func TestUnavailable(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		region   string        // set, it skips the bucket location lookup, which is not retried
		timeout  time.Duration // of the caller's context
		within   time.Duration
	}{
		{"refused", closedPort(t), "", time.Minute, 5 * time.Second},
		// DefaultMaxRetries attempts, at most 0.2+0.4+0.8+1 s apart.
		{"refused, retried", closedPort(t), "us-east-1", time.Minute, 5 * time.Second},
		{"silent", silentServer(t), "", time.Second, 3 * time.Second},
		{"silent, retried", silentServer(t), "us-east-1", time.Second, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s3.Config{Endpoint: tt.endpoint, Bucket: "absent", AccessKey: "k", SecretKey: "secret-key", Region: tt.region}
			ctx, cancel := context.WithTimeout(t.Context(), tt.timeout)
			defer cancel()
			start := time.Now()
			_, err := s3.New(ctx, cfg)
			took := time.Since(start)
			if !errors.Is(err, storage.ErrUnavailable) {
				t.Fatalf("New: err = %v, want ErrUnavailable", err)
			}
			if took > tt.within {
				t.Errorf("New took %s to fail, want under %s", took, tt.within)
			}
			for _, want := range []string{"absent", tt.endpoint} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
		})
	}
}

// TestServerGone: a store whose server stops reports ErrUnavailable on
// every operation, quickly.
func TestServerGone(t *testing.T) {
	srv := miniotest.Start(t)
	st := newStore(t, srv, "gone")
	ctx := t.Context()
	obj, err := st.Put(ctx, strings.NewReader("before the outage"), storage.PutOptions{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	_, err = st.Stat(ctx, obj.Key)
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Stat: err = %v, want ErrUnavailable", err)
	}
	_, _, err = st.Get(ctx, obj.Key)
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Get: err = %v, want ErrUnavailable", err)
	}
	_, err = st.Put(ctx, strings.NewReader("during the outage"), storage.PutOptions{Size: -1})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Put: err = %v, want ErrUnavailable", err)
	}
	err = st.List(ctx, func(storage.Object) error { return nil })
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("List: err = %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("four operations took %s to fail", took)
	}
}

func TestBench(t *testing.T) {
	srv := miniotest.Start(t)
	cfg, err := s3.ParseURL(srv.URL("bench"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := s3.Bench(t.Context(), cfg, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	if res.StoreMiBps <= 0 || res.RawMiBps <= 0 || res.Ratio <= 0 {
		t.Errorf("Bench = %+v", res)
	}
	t.Log(res)
	var n int
	for range srv.Client(t).ListObjectsIter(t.Context(), "bench", minio.ListObjectsOptions{Recursive: true}) {
		n++
	}
	if n != 0 {
		t.Errorf("Bench left %d objects", n)
	}
}
