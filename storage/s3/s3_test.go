package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
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
// MinIO and remembers, per store, its bucket and blob names.
type s3Backend struct {
	srv    *miniotest.Server
	client *minio.Client
	n      atomic.Int64
	mu     sync.Mutex
	stores map[storage.Store]s3Bucket
}

type s3Bucket struct {
	name      string
	blobNames func() []string
}

func newS3Backend(t *testing.T) *s3Backend {
	srv := miniotest.Start(t)
	return &s3Backend{srv: srv, client: srv.Client(t), stores: map[storage.Store]s3Bucket{}}
}

func (b *s3Backend) newStore(t *testing.T) storage.Store {
	bucket := fmt.Sprintf("conformance-%d", b.n.Add(1))
	st := newStore(t, b.srv, bucket)
	b.mu.Lock()
	b.stores[st] = s3Bucket{name: bucket, blobNames: s3.BlobNames(st)}
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

// blobOf returns the blob the address key names, or "" for an object of
// the old layout that holds the bytes itself.
func blobOf(t testing.TB, c *minio.Client, bucket, key string) string {
	t.Helper()
	info, err := c.StatObject(context.Background(), bucket, key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("stat %s: %v", key, err)
	}
	return info.UserMetadata[s3.MetaBlob]
}

// tamper rewrites the bytes a reader of key gets, its blob, with one byte
// flipped, straight into the bucket.
func (b *s3Backend) tamper(t *testing.T, st storage.Store, key string) {
	bucket := b.bucket(st).name
	name := blobOf(t, b.client, bucket, key)
	if name == "" {
		t.Fatalf("tamper: %s names no blob", key)
	}
	o, err := b.client.GetObject(t.Context(), bucket, name, minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("tamper: get %s: %v", name, err)
	}
	data, err := io.ReadAll(o)
	o.Close()
	if err != nil {
		t.Fatalf("tamper: read %s: %v", name, err)
	}
	data[len(data)/2] ^= 0xff
	if _, err := b.client.PutObject(t.Context(), bucket, name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatalf("tamper: put %s: %v", name, err)
	}
}

// leftovers reports temporary objects, blobs no address names and the
// unfinished multipart uploads of every blob name the store used.
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
	for _, blob := range unnamedBlobs(t, b.client, bk.name) {
		left = append(left, "unnamed blob "+blob)
	}
	// MinIO lists uploads by exact name, or all of them with no prefix.
	for _, name := range append(bk.blobNames(), "") {
		for u := range b.client.ListIncompleteUploads(ctx, bk.name, name, name == "") {
			if u.Err != nil {
				t.Fatalf("leftovers: list uploads of %s: %v", name, u.Err)
			}
			left = append(left, "multipart upload "+u.Key+" "+u.UploadID)
		}
	}
	return left
}

// unnamedBlobs lists the blobs of bucket that no address names.
func unnamedBlobs(t testing.TB, c *minio.Client, bucket string) []string {
	t.Helper()
	ctx := context.Background()
	named := map[string]bool{}
	for o := range c.ListObjectsIter(ctx, bucket, minio.ListObjectsOptions{Prefix: storage.KeyPrefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list addresses: %v", o.Err)
		}
		named[blobOf(t, c, bucket, o.Key)] = true
	}
	var unnamed []string
	for o := range c.ListObjectsIter(ctx, bucket, minio.ListObjectsOptions{Prefix: s3.BlobPrefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list blobs: %v", o.Err)
		}
		if !named[o.Key] {
			unnamed = append(unnamed, o.Key)
		}
	}
	return unnamed
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
		c := srv.Client(t)
		for _, name := range []string{obj.Key, blobOf(t, c, "content-type", obj.Key)} {
			info, err := c.StatObject(ctx, "content-type", name, minio.StatObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if info.ContentType != tt.want {
				t.Errorf("media type %q: Content-Type of %s = %q, want %q", tt.mediaType, name, info.ContentType, tt.want)
			}
		}
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

// readAll reads key back through a VerifyingReader against sha and size.
func readAll(t *testing.T, st storage.Store, key, sha string, size int64) []byte {
	t.Helper()
	rc, obj, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	if obj.Size != size {
		t.Errorf("Get(%s): Size = %d, want %d", key, obj.Size, size)
	}
	data, err := io.ReadAll(storage.NewVerifyingReader(rc, key, size, sha))
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data
}

// bucketNames lists every object of bucket.
func bucketNames(t *testing.T, c *minio.Client, bucket string) []string {
	t.Helper()
	var names []string
	for o := range c.ListObjectsIter(t.Context(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		names = append(names, o.Key)
	}
	slices.Sort(names)
	return names
}

func sha(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// TestLayout: a Put uploads the bytes once, to a blob (here in parts), and
// writes the address as an empty object naming the blob and its size.
func TestLayout(t *testing.T) {
	srv := miniotest.Start(t)
	st := newStore(t, srv, "layout")
	c := srv.Client(t)
	ctx := t.Context()
	const size = 20 << 20 // three parts of 8 MiB
	obj, err := st.Put(ctx, storagetest.Stream(1, size), storage.PutOptions{Size: -1, MediaType: "video/mp4"})
	if err != nil {
		t.Fatal(err)
	}
	if want := storagetest.StreamSHA256(1, size); obj.SHA256 != want || obj.Size != size || obj.ModTime.IsZero() {
		t.Fatalf("Put = %+v, want SHA256 %s, size %d and a ModTime", obj, want, size)
	}
	addr, err := c.StatObject(ctx, "layout", obj.Key, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	blob := addr.UserMetadata[s3.MetaBlob]
	if addr.Size != 0 || !strings.HasPrefix(blob, s3.BlobPrefix) || addr.UserMetadata[s3.MetaSize] != strconv.Itoa(size) {
		t.Fatalf("address object: %d bytes, metadata %v; want 0 bytes naming a blob of %d", addr.Size, addr.UserMetadata, size)
	}
	info, err := c.StatObject(ctx, "layout", blob, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != size || info.ContentType != "video/mp4" || !strings.Contains(info.ETag, "-") {
		t.Errorf("blob: %d bytes, Content-Type %q, ETag %q; want %d bytes of video/mp4 uploaded in parts", info.Size, info.ContentType, info.ETag, size)
	}
	if got, want := bucketNames(t, c, "layout"), []string{blob, obj.Key}; !slices.Equal(got, want) {
		t.Errorf("bucket holds %v, want %v", got, want)
	}
	readAll(t, st, obj.Key, obj.SHA256, size)
	if s, err := st.Stat(ctx, obj.Key); err != nil || s.Size != size || s.ModTime.IsZero() {
		t.Errorf("Stat = %+v, %v", s, err)
	}
	if err := st.Delete(ctx, obj.Key); err != nil {
		t.Fatal(err)
	}
	if got := bucketNames(t, c, "layout"); len(got) != 0 {
		t.Errorf("bucket holds %v after Delete", got)
	}
}

// TestOldLayout: address objects written by earlier versions hold the bytes
// themselves. They stay readable, listed with their size (also by servers
// that list no metadata), deduplicated against and deletable.
func TestOldLayout(t *testing.T) {
	srv := miniotest.Start(t)
	c := srv.Client(t)
	ctx := t.Context()
	for _, plain := range []bool{false, true} {
		bucket := fmt.Sprintf("old-layout-%v", plain)
		st := newStore(t, srv, bucket)
		if plain {
			s3.ListPlain(st)
		}
		data := storagetest.Bytes(2, 300<<10)
		old := map[string][]byte{storage.Key(sha(data)): data, storage.Key(sha(nil)): nil}
		for key, b := range old {
			if _, err := c.PutObject(ctx, bucket, key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		fresh, err := st.Put(ctx, strings.NewReader("new layout"), storage.PutOptions{Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		for key, b := range old {
			if got := readAll(t, st, key, key[len(storage.KeyPrefix):], int64(len(b))); !bytes.Equal(got, b) {
				t.Errorf("%s: Get returned other bytes", key)
			}
			if s, err := st.Stat(ctx, key); err != nil || s.Size != int64(len(b)) {
				t.Errorf("Stat(%s) = %+v, %v; want %d bytes", key, s, err, len(b))
			}
		}
		listed := map[string]int64{}
		if err := st.List(ctx, func(o storage.Object) error { listed[o.Key] = o.Size; return nil }); err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{fresh.Key: fresh.Size}
		for key, b := range old {
			want[key] = int64(len(b))
		}
		if !maps.Equal(listed, want) {
			t.Errorf("plain listing %v: List = %v, want %v", plain, listed, want)
		}
		// The same bytes put again: the old object stands for them.
		again, err := st.Put(ctx, bytes.NewReader(data), storage.PutOptions{Size: int64(len(data))})
		if err != nil || again.Key != storage.Key(sha(data)) {
			t.Fatalf("Put = %+v, %v", again, err)
		}
		if b := blobOf(t, c, bucket, again.Key); b != "" {
			t.Errorf("Put replaced an old-layout object with a pointer to %s", b)
		}
		if left := unnamedBlobs(t, c, bucket); len(left) != 0 {
			t.Errorf("unnamed blobs: %v", left)
		}
		for key := range old {
			if err := st.Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Delete(ctx, fresh.Key); err != nil {
			t.Fatal(err)
		}
		if got := bucketNames(t, c, bucket); len(got) != 0 {
			t.Errorf("bucket holds %v after Delete", got)
		}
	}
}

// TestDamagedAddress: an address whose blob is gone is not found, one that
// names no blob fails to read, and a Put of the bytes repairs either.
func TestDamagedAddress(t *testing.T) {
	srv := miniotest.Start(t)
	st := newStore(t, srv, "damaged")
	c := srv.Client(t)
	ctx := t.Context()
	data := storagetest.Bytes(3, 100<<10)
	obj, err := st.Put(ctx, bytes.NewReader(data), storage.PutOptions{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	blob := blobOf(t, c, "damaged", obj.Key)
	if err := c.RemoveObject(ctx, "damaged", blob, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stat(ctx, obj.Key); !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), obj.Key) {
		t.Errorf("Stat with the blob gone: %v, want ErrNotFound naming %s", err, obj.Key)
	}
	if _, _, err := st.Get(ctx, obj.Key); !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), obj.Key) {
		t.Errorf("Get with the blob gone: %v, want ErrNotFound naming %s", err, obj.Key)
	}
	repair := func(wantUnnamed ...string) {
		t.Helper()
		again, err := st.Put(ctx, bytes.NewReader(data), storage.PutOptions{Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, st, again.Key, obj.SHA256, obj.Size); !bytes.Equal(got, data) {
			t.Error("Get after the repair returned other bytes")
		}
		if left := unnamedBlobs(t, c, "damaged"); !slices.Equal(left, wantUnnamed) {
			t.Errorf("unnamed blobs: %v, want %v", left, wantUnnamed)
		}
	}
	repair()

	// An address naming something that is not a blob. The blob it named
	// before is left for Sweep.
	blob = blobOf(t, c, "damaged", obj.Key)
	_, err = c.PutObject(ctx, "damaged", obj.Key, bytes.NewReader(nil), 0, minio.PutObjectOptions{UserMetadata: map[string]string{s3.MetaBlob: obj.Key}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Get(ctx, obj.Key); err == nil || !strings.Contains(err.Error(), "not a blob") {
		t.Errorf("Get of an address naming no blob: %v", err)
	}
	repair(blob)
}

// TestSweep: Sweep removes old leftovers of interrupted Puts, and blobs no
// address names, whether the server lists metadata or not.
func TestSweep(t *testing.T) {
	srv := miniotest.Start(t)
	c := srv.Client(t)
	ctx := t.Context()
	for _, plain := range []bool{false, true} {
		bucket := fmt.Sprintf("sweep-%v", plain)
		st := newStore(t, srv, bucket)
		if plain {
			s3.ListPlain(st)
		}
		// What a process killed between upload and link leaves, and what
		// earlier versions killed between upload and copy left.
		for _, name := range []string{s3.BlobPrefix + "a", s3.TempPrefix + "b", s3.TempPrefix + "c"} {
			if _, err := c.PutObject(ctx, bucket, name, strings.NewReader("partial"), 7, minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		// And what a process killed mid-upload leaves.
		core := &minio.Core{Client: c}
		if _, err := core.NewMultipartUpload(ctx, bucket, s3.BlobPrefix+"d", minio.PutObjectOptions{}); err != nil {
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
		if n, err := sw.Sweep(ctx, time.Nanosecond, true); err != nil || n != 4 {
			t.Fatalf("Sweep(dry run) = %d, %v; want 4", n, err)
		}
		if n, err := sw.Sweep(ctx, time.Nanosecond, false); err != nil || n != 4 {
			t.Fatalf("Sweep = %d, %v; want 4", n, err)
		}
		if got, want := bucketNames(t, c, bucket), []string{blobOf(t, c, bucket, kept.Key), kept.Key}; !slices.Equal(got, want) {
			t.Errorf("bucket holds %v after Sweep, want %v", got, want)
		}
		for u := range c.ListIncompleteUploads(ctx, bucket, "", true) {
			t.Errorf("upload left after Sweep: %s %v", u.Key, u.Err)
		}
		readAll(t, st, kept.Key, kept.SHA256, kept.Size)
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
