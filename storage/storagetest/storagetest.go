// Package storagetest is the conformance suite every storage.Store backend
// passes: content addressing, deduplication, streaming, tamper detection,
// error sentinels and clean failure of interrupted uploads.
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store { ... }, storagetest.Options{Tamper: ...})
//	}
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/storage"
)

// Options adapt the suite to a backend.
type Options struct {
	// Tamper changes the bytes stored under key in s behind the store's
	// back (directly in the bucket), keeping their number. The suite then
	// expects storage.VerifyingReader to catch it. Without Tamper that test
	// is skipped.
	Tamper func(t *testing.T, s storage.Store, key string)
	// Leftovers lists what failed or cancelled uploads left in s that List
	// does not show: temporary objects, unfinished multipart uploads,
	// orphaned chunks. The suite expects none after every upload has
	// returned. Optional.
	Leftovers func(t *testing.T, s storage.Store) []string
	// LargeSize is the size of the object streamed by the Large test;
	// default 64 MiB.
	LargeSize int64
}

// TestTimeout bounds every test of the suite.
const TestTimeout = 2 * time.Minute

// Run runs the suite. newStore is called once per test and returns an
// empty store (a fresh bucket) that lives until the test ends.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store, opts Options) {
	if opts.LargeSize == 0 {
		opts.LargeSize = 64 << 20
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store, o Options)
	}{
		{"PutGetStat", testPutGetStat},
		{"Empty", testEmpty},
		{"ContentAddress", testContentAddress},
		{"SizeHint", testSizeHint},
		{"Dedup", testDedup},
		{"ConcurrentSameContent", testConcurrentSameContent},
		{"Tamper", testTamper},
		{"NotFound", testNotFound},
		{"InvalidKey", testInvalidKey},
		{"Delete", testDelete},
		{"List", testList},
		{"CancelMidUpload", testCancelMidUpload},
		{"ReaderError", testReaderError},
		{"Large", testLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newStore(t), opts) })
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), TestTimeout)
	t.Cleanup(cancel)
	return ctx
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// progress records the calls of a PutOptions.Progress callback.
type progress struct {
	mu    sync.Mutex
	calls []int64
}

func (p *progress) fn(done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, done)
}

// check asserts that progress was reported, never went back, and ended at
// total.
func (p *progress) check(t *testing.T, total int64) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if total > 0 && len(p.calls) == 0 {
		t.Fatalf("Progress never called for %d bytes", total)
	}
	if !slices.IsSorted(p.calls) {
		t.Errorf("Progress went backwards: %v", p.calls)
	}
	if n := len(p.calls); n > 0 && p.calls[n-1] != total {
		t.Errorf("last Progress = %d, want %d", p.calls[n-1], total)
	}
}

func put(t *testing.T, ctx context.Context, s storage.Store, data []byte, opts storage.PutOptions) storage.Object {
	t.Helper()
	obj, err := s.Put(ctx, bytes.NewReader(data), opts)
	if err != nil {
		t.Fatalf("Put(%d bytes): %v", len(data), err)
	}
	checkObject(t, "Put", obj, sum(data), int64(len(data)))
	return obj
}

func checkObject(t *testing.T, op string, obj storage.Object, sha string, size int64) {
	t.Helper()
	if want := storage.Key(sha); obj.Key != want {
		t.Errorf("%s: Key = %q, want %q", op, obj.Key, want)
	}
	if obj.SHA256 != sha {
		t.Errorf("%s: SHA256 = %q, want %q", op, obj.SHA256, sha)
	}
	if obj.Size != size {
		t.Errorf("%s: Size = %d, want %d", op, obj.Size, size)
	}
}

// get reads key back through a VerifyingReader against the manifest
// (sha, size) and returns the bytes.
func get(t *testing.T, ctx context.Context, s storage.Store, key, sha string, size int64) []byte {
	t.Helper()
	rc, obj, err := s.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	defer rc.Close()
	checkObject(t, "Get", obj, sha, size)
	b, err := io.ReadAll(storage.NewVerifyingReader(rc, key, size, sha))
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func list(t *testing.T, ctx context.Context, s storage.Store) map[string]storage.Object {
	t.Helper()
	objs := map[string]storage.Object{}
	err := s.List(ctx, func(o storage.Object) error {
		if _, dup := objs[o.Key]; dup {
			t.Errorf("List returned %s twice", o.Key)
		}
		objs[o.Key] = o
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return objs
}

func wantKeys(t *testing.T, ctx context.Context, s storage.Store, keys ...string) {
	t.Helper()
	got := list(t, ctx, s)
	var gotKeys []string
	for k := range got {
		gotKeys = append(gotKeys, k)
	}
	slices.Sort(gotKeys)
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	if !slices.Equal(gotKeys, keys) {
		t.Errorf("List = %v, want %v", gotKeys, keys)
	}
}

// noLeftovers waits briefly for the backend to settle, then fails the test
// if interrupted uploads left anything behind.
func noLeftovers(t *testing.T, s storage.Store, o Options) {
	t.Helper()
	if o.Leftovers == nil {
		return
	}
	var left []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		if left = o.Leftovers(t, s); len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("left behind by uploads: %v", left)
}

func testPutGetStat(t *testing.T, s storage.Store, o Options) {
	ctx := testCtx(t)
	data := []byte("docaxis attachment: minutes of the council meeting\n")
	var p progress
	before := time.Now()
	obj := put(t, ctx, s, data, storage.PutOptions{Size: int64(len(data)), MediaType: "text/plain", Progress: p.fn})
	p.check(t, int64(len(data)))
	if obj.ModTime.IsZero() {
		t.Error("Put: ModTime is zero")
	} else if d := obj.ModTime.Sub(before); d < -time.Hour || d > time.Hour {
		t.Errorf("Put: ModTime %s is far from now (%s)", obj.ModTime, before)
	}
	if got := get(t, ctx, s, obj.Key, obj.SHA256, obj.Size); !bytes.Equal(got, data) {
		t.Errorf("Get = %q, want %q", got, data)
	}
	st, err := s.Stat(ctx, obj.Key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	checkObject(t, "Stat", st, obj.SHA256, obj.Size)
	if st.ModTime.IsZero() {
		t.Error("Stat: ModTime is zero")
	}
	wantKeys(t, ctx, s, obj.Key)
}

func testEmpty(t *testing.T, s storage.Store, o Options) {
	ctx := testCtx(t)
	for _, hint := range []int64{0, -1} {
		obj := put(t, ctx, s, nil, storage.PutOptions{Size: hint})
		if got := get(t, ctx, s, obj.Key, obj.SHA256, 0); len(got) != 0 {
			t.Errorf("Get of the empty object returned %d bytes", len(got))
		}
		st, err := s.Stat(ctx, obj.Key)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		checkObject(t, "Stat", st, sum(nil), 0)
	}
	wantKeys(t, ctx, s, storage.Key(sum(nil)))
}

func testContentAddress(t *testing.T, s storage.Store, o Options) {
	ctx := testCtx(t)
	// Sizes around the chunk and buffer sizes of the backends.
	sizes := []int{1, 1000, 128<<10 - 1, 128<<10 + 1, 1<<20 + 17}
	var keys []string
	for i, n := range sizes {
		data := Bytes(uint64(i+1), n)
		hint := int64(n)
		if i%2 == 1 {
			hint = -1
		}
		obj := put(t, ctx, s, data, storage.PutOptions{Size: hint, MediaType: "application/octet-stream"})
		if got := get(t, ctx, s, obj.Key, sum(data), int64(n)); !bytes.Equal(got, data) {
			t.Errorf("%d bytes: Get returned different bytes", n)
		}
		keys = append(keys, obj.Key)
	}
	wantKeys(t, ctx, s, keys...)
}

// testSizeHint: PutOptions.Size is a hint; a wrong one must not truncate or
// pad the stored object.
func testSizeHint(t *testing.T, s storage.Store, o Options) {
	ctx := testCtx(t)
	data := Bytes(7, 300<<10)
	n := int64(len(data))
	for _, hint := range []int64{-1, 0, 1, n - 1, n, n + 1, 64 << 20} {
		var p progress
		obj := put(t, ctx, s, data, storage.PutOptions{Size: hint, Progress: p.fn})
		p.check(t, n)
		if got := get(t, ctx, s, obj.Key, sum(data), n); !bytes.Equal(got, data) {
			t.Errorf("hint %d: Get returned different bytes", hint)
		}
	}
	wantKeys(t, ctx, s, storage.Key(sum(data)))
	noLeftovers(t, s, o)
}

func testDedup(t *testing.T, s storage.Store, o Options) {
	ctx := testCtx(t)
	a, b := Bytes(1, 200<<10), Bytes(2, 200<<10)
	first := put(t, ctx, s, a, storage.PutOptions{Size: int64(len(a)), MediaType: "application/pdf"})
	second := put(t, ctx, s, a, storage.PutOptions{Size: -1, MediaType: "text/plain"})
	if first.Key != second.Key {
		t.Errorf("same bytes got keys %s and %s", first.Key, second.Key)
	}
	wantKeys(t, ctx, s, first.Key)
	other := put(t, ctx, s, b, storage.PutOptions{Size: -1})
	wantKeys(t, ctx, s, first.Key, other.Key)
	if got := get(t, ctx, s, first.Key, first.SHA256, first.Size); !bytes.Equal(got, a) {
		t.Error("Get after a duplicate Put returned different bytes")
	}
	noLeftovers(t, s, o)
}

func testConcurrentSameContent(t *testing.T, s storage.Store, o Options) {
	ctx := testCtx(t)
	data := Bytes(3, 1<<20+5)
	const n = 6
	objs := make([]storage.Object, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			objs[i], errs[i] = s.Put(ctx, bytes.NewReader(data), storage.PutOptions{Size: -1})
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Put %d: %v", i, errs[i])
		}
		checkObject(t, fmt.Sprintf("Put %d", i), objs[i], sum(data), int64(len(data)))
	}
	wantKeys(t, ctx, s, storage.Key(sum(data)))
	if got := get(t, ctx, s, objs[0].Key, sum(data), int64(len(data))); !bytes.Equal(got, data) {
		t.Error("Get after concurrent Puts returned different bytes")
	}
	noLeftovers(t, s, o)
}

func testTamper(t *testing.T, s storage.Store, o Options) {
	if o.Tamper == nil {
		t.Skip("backend gives no Tamper hook")
	}
	ctx := testCtx(t)
	data := Bytes(4, 64<<10)
	obj := put(t, ctx, s, data, storage.PutOptions{Size: int64(len(data))})
	o.Tamper(t, s, obj.Key)

	// The recipient checks against the manifest, not against what the
	// store says now.
	rc, _, err := s.Get(ctx, obj.Key)
	if err == nil {
		_, err = io.Copy(io.Discard, storage.NewVerifyingReader(rc, obj.Key, obj.Size, obj.SHA256))
		rc.Close()
	}
	if !errors.Is(err, storage.ErrDigestMismatch) && !errors.Is(err, storage.ErrSizeMismatch) {
		t.Fatalf("reading tampered %s: err = %v, want ErrDigestMismatch or ErrSizeMismatch", obj.Key, err)
	}
}

func testNotFound(t *testing.T, s storage.Store, o Options) {
	ctx := testCtx(t)
	key := storage.Key(sum([]byte("never stored")))
	_, _, err := s.Get(ctx, key)
	wantErr(t, "Get", key, err, storage.ErrNotFound)
	_, err = s.Stat(ctx, key)
	wantErr(t, "Stat", key, err, storage.ErrNotFound)
	if err := s.Delete(ctx, key); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil", err)
	}
}

func wantErr(t *testing.T, op, key string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s(%q): err = %v, want %v", op, key, err, want)
		return
	}
	if key != "" && !strings.Contains(err.Error(), key) {
		t.Errorf("%s(%q): error %q does not name the key", op, key, err)
	}
}

func testInvalidKey(t *testing.T, s storage.Store, o Options) {
	ctx := testCtx(t)
	hex64 := sum([]byte("x"))
	for _, key := range []string{
		"",
		"sha256/",
		"sha256/abc",
		hex64,
		"sha256/" + strings.ToUpper(hex64),
		"sha256/" + hex64 + "/x",
		"sha512/" + hex64,
		"tmp/" + hex64,
		"../sha256/" + hex64,
	} {
		_, _, err := s.Get(ctx, key)
		wantErr(t, "Get", "", err, storage.ErrInvalidKey)
		_, err = s.Stat(ctx, key)
		wantErr(t, "Stat", "", err, storage.ErrInvalidKey)
	}
}

func testDelete(t *testing.T, s storage.Store, o Options) {
	ctx := testCtx(t)
	data := Bytes(5, 10<<10)
	obj := put(t, ctx, s, data, storage.PutOptions{Size: int64(len(data))})
	if err := s.Delete(ctx, obj.Key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Stat(ctx, obj.Key)
	wantErr(t, "Stat after Delete", obj.Key, err, storage.ErrNotFound)
	_, _, err = s.Get(ctx, obj.Key)
	wantErr(t, "Get after Delete", obj.Key, err, storage.ErrNotFound)
	wantKeys(t, ctx, s)
	if err := s.Delete(ctx, obj.Key); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	// The same bytes can be stored again.
	again := put(t, ctx, s, data, storage.PutOptions{Size: -1})
	if got := get(t, ctx, s, again.Key, again.SHA256, again.Size); !bytes.Equal(got, data) {
		t.Error("Get after Delete and Put returned different bytes")
	}
	wantKeys(t, ctx, s, obj.Key)
}

func testList(t *testing.T, s storage.Store, o Options) {
	ctx := testCtx(t)
	wantKeys(t, ctx, s)
	stored := map[string]storage.Object{}
	for i := range 3 {
		data := Bytes(uint64(10+i), 1000*(i+1))
		obj := put(t, ctx, s, data, storage.PutOptions{Size: -1})
		stored[obj.Key] = obj
	}
	got := list(t, ctx, s)
	if len(got) != len(stored) {
		t.Errorf("List returned %d objects, want %d", len(got), len(stored))
	}
	for key, want := range stored {
		o, ok := got[key]
		if !ok {
			t.Errorf("List misses %s", key)
			continue
		}
		checkObject(t, "List", o, want.SHA256, want.Size)
		if o.ModTime.IsZero() {
			t.Errorf("List: %s has no ModTime", key)
		}
	}
	stop := errors.New("stop")
	calls := 0
	err := s.List(ctx, func(storage.Object) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List with fn failing: err = %v after %d calls, want %v after 1", err, calls, stop)
	}
}

// producer yields pseudo-random bytes; after cancelAt bytes it calls
// cancel and keeps producing, as a user's slow upload would, until limit,
// where it fails so that a store ignoring cancellation cannot hang.
type producer struct {
	r        io.Reader
	n        int64
	cancelAt int64
	cancel   func()
	limit    int64
	failWith error
}

var errKeptReading = errors.New("storagetest: store kept reading long after the upload was cancelled")

func (p *producer) Read(b []byte) (int, error) {
	if p.n >= p.limit {
		return 0, p.failWith
	}
	if int64(len(b)) > p.limit-p.n {
		b = b[:p.limit-p.n]
	}
	if p.cancel != nil && p.n+int64(len(b)) > p.cancelAt {
		b = b[:max(p.cancelAt-p.n, 1)]
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.cancel != nil && p.n >= p.cancelAt {
		p.cancel()
		p.cancel = nil
	}
	return n, err
}

func testCancelMidUpload(t *testing.T, s storage.Store, o Options) {
	ctx := testCtx(t)
	before := list(t, ctx, s)
	upCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Past one 16 MiB part, so an S3 multipart upload is under way.
	const cancelAt = 20 << 20
	p := &producer{r: Stream(20, 1<<40), cancelAt: cancelAt, cancel: cancel, limit: cancelAt + 64<<20, failWith: errKeptReading}
	obj, err := s.Put(upCtx, p, storage.PutOptions{Size: -1})
	if err == nil {
		t.Fatalf("Put with its context cancelled mid-upload succeeded: %+v", obj)
	}
	if errors.Is(err, errKeptReading) {
		t.Fatalf("Put: %v", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put: err = %v, want one wrapping context.Canceled", err)
	}
	if after := list(t, ctx, s); len(after) != len(before) {
		t.Errorf("List after a cancelled Put: %d objects, want %d", len(after), len(before))
	}
	noLeftovers(t, s, o)
}

// testReaderError: a failing reader fails the Put, with its error in the
// chain, and stores nothing. io.ErrUnexpectedEOF is the error of a source
// cut short (a dropped HTTP upload); it must not pass for the end of the
// stream, which would store a truncated attachment as a whole one.
func testReaderError(t *testing.T, s storage.Store, o Options) {
	ctx := testCtx(t)
	boom := errors.New("storagetest: disk read error")
	for _, tt := range []struct {
		after int64
		err   error
	}{
		{0, boom},
		{1000, boom},
		{2<<20 + 5, boom},
		{0, io.ErrUnexpectedEOF},
		{1000, io.ErrUnexpectedEOF},
		{128 << 10, io.ErrUnexpectedEOF},
		{2<<20 + 5, io.ErrUnexpectedEOF},
	} {
		for _, hint := range []int64{-1, tt.after + 10} {
			p := &producer{r: Stream(21, 1<<40), limit: tt.after, failWith: tt.err}
			obj, err := s.Put(ctx, p, storage.PutOptions{Size: hint})
			if !errors.Is(err, tt.err) {
				t.Errorf("Put from a reader failing with %q after %d bytes (size hint %d): got %+v, err = %v", tt.err, tt.after, hint, obj, err)
			}
		}
	}
	wantKeys(t, ctx, s)
	noLeftovers(t, s, o)
}

func testLarge(t *testing.T, s storage.Store, o Options) {
	ctx := testCtx(t)
	const seed = 99
	n := o.LargeSize
	sha := StreamSHA256(seed, n)
	var p progress
	start := time.Now()
	obj, err := s.Put(ctx, Stream(seed, n), storage.PutOptions{Size: -1, MediaType: "application/octet-stream", Progress: p.fn})
	if err != nil {
		t.Fatalf("Put(%d bytes): %v", n, err)
	}
	putTook := time.Since(start)
	checkObject(t, "Put", obj, sha, n)
	p.check(t, n)

	start = time.Now()
	rc, got, err := s.Get(ctx, obj.Key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	defer rc.Close()
	checkObject(t, "Get", got, sha, n)
	read, err := io.Copy(io.Discard, storage.NewVerifyingReader(rc, obj.Key, n, sha))
	if err != nil {
		t.Fatalf("read back after %d bytes: %v", read, err)
	}
	t.Logf("%d MiB: put %.0f MiB/s, get %.0f MiB/s", n>>20,
		float64(n)/(1<<20)/putTook.Seconds(), float64(n)/(1<<20)/time.Since(start).Seconds())
	wantKeys(t, ctx, s, obj.Key)
	noLeftovers(t, s, o)
}
