package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/natstest"
	"github.com/docaxis/docaxis/storage/storagetest"
)

// jsBackend hands the conformance suite one bucket per test on a shared
// embedded server and remembers which store uses which bucket, for the
// hooks that look behind the store's back.
type jsBackend struct {
	js      jetstream.JetStream
	n       atomic.Int64
	mu      sync.Mutex
	buckets map[storage.Store]string
}

func newJSBackend(t *testing.T) *jsBackend {
	url, _ := natstest.Start(t)
	_, js := natstest.Connect(t, url)
	return &jsBackend{js: js, buckets: map[storage.Store]string{}}
}

func (b *jsBackend) newStore(t *testing.T) storage.Store {
	bucket := fmt.Sprintf("T%d", b.n.Add(1))
	s, err := storage.NewJetStream(t.Context(), b.js, storage.JetStreamConfig{Bucket: bucket})
	if err != nil {
		t.Fatalf("NewJetStream(%s): %v", bucket, err)
	}
	b.mu.Lock()
	b.buckets[s] = bucket
	b.mu.Unlock()
	return s
}

func (b *jsBackend) objectStore(t *testing.T, s storage.Store) (jetstream.ObjectStore, string) {
	t.Helper()
	b.mu.Lock()
	bucket := b.buckets[s]
	b.mu.Unlock()
	obs, err := b.js.ObjectStore(t.Context(), bucket)
	if err != nil {
		t.Fatalf("object store %s: %v", bucket, err)
	}
	return obs, bucket
}

// tamper rewrites the object under key with one byte flipped, straight
// through the object store.
func (b *jsBackend) tamper(t *testing.T, s storage.Store, key string) {
	obs, _ := b.objectStore(t, s)
	data, err := obs.GetBytes(t.Context(), key)
	if err != nil {
		t.Fatalf("tamper: get %s: %v", key, err)
	}
	data[len(data)/2] ^= 0xff
	if _, err := obs.PutBytes(t.Context(), key, data); err != nil {
		t.Fatalf("tamper: put %s: %v", key, err)
	}
}

// leftovers reports objects outside the content addresses (temporary
// uploads) and chunks that belong to no object (a Put that failed or lost
// a race without cleaning up).
func (b *jsBackend) leftovers(t *testing.T, s storage.Store) []string {
	ctx := t.Context()
	obs, bucket := b.objectStore(t, s)
	var left []string
	live := map[string]bool{}
	infos, err := obs.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		t.Fatalf("leftovers: list %s: %v", bucket, err)
	}
	for _, info := range infos {
		live[info.NUID] = true
		if !strings.HasPrefix(info.Name, storage.KeyPrefix) {
			left = append(left, "object "+info.Name)
		}
	}
	stream, err := b.js.Stream(ctx, "OBJ_"+bucket)
	if err != nil {
		t.Fatalf("leftovers: stream of %s: %v", bucket, err)
	}
	si, err := stream.Info(ctx, jetstream.WithSubjectFilter("$O."+bucket+".C.>"))
	if err != nil {
		t.Fatalf("leftovers: stream info of %s: %v", bucket, err)
	}
	for subj, n := range si.State.Subjects {
		nuid := subj[strings.LastIndexByte(subj, '.')+1:]
		if !live[nuid] {
			left = append(left, fmt.Sprintf("%d orphaned chunks on %s", n, subj))
		}
	}
	slices.Sort(left)
	return left
}

func TestJetStreamConformance(t *testing.T) {
	b := newJSBackend(t)
	storagetest.Run(t, b.newStore, storagetest.Options{
		Tamper:    b.tamper,
		Leftovers: b.leftovers,
	})
}

// storeServerGone returns a store whose server went away after it was
// opened.
func storeServerGone(t *testing.T) storage.Store {
	t.Helper()
	url, srv := natstest.Start(t)
	_, js := natstest.Connect(t, url)
	s, err := storage.NewJetStream(t.Context(), js, storage.JetStreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	return s
}

// TestJetStreamUnavailable: a store whose server is gone reports
// ErrUnavailable, not a bare NATS error.
func TestJetStreamUnavailable(t *testing.T) {
	s := storeServerGone(t)
	// While the client reconnects a request is never answered: the caller's
	// deadline is what turns that into ErrUnavailable.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := s.Stat(ctx, storage.Key(strings.Repeat("0", 64)))
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Stat with the server down: err = %v, want ErrUnavailable", err)
	}
}

// TestJetStreamPutGivesUpAtTheDeadline: a Put whose chunks are never
// answered (the server went away) fails when the caller's deadline passes,
// not when the cleanup of its chunks gives up (issue 18: a send whose
// upload met a failover answered 35 s after its 5 s deadline).
func TestJetStreamPutGivesUpAtTheDeadline(t *testing.T) {
	s := storeServerGone(t)
	const deadline = 2 * time.Second
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	data := storagetest.Bytes(7, 1<<20)
	start := time.Now()
	_, err := s.Put(ctx, bytes.NewReader(data), storage.PutOptions{Size: int64(len(data))})
	took := time.Since(start)
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("Put with the server down: err = %v, want ErrUnavailable", err)
	}
	// The cleanup waits up to 35 s for the chunks in flight; the caller
	// must not.
	if took > deadline+5*time.Second {
		t.Errorf("Put returned %s after its %s deadline", took-deadline, deadline)
	}
}

// TestJetStreamSeek: a reader seeks by the chunk index Put records, for an
// upload whose chunks are interleaved with another's in the stream, and
// the server then sends only the chunks from the indexed one before the
// offset, not the object from its first byte (a resumed download of a
// large attachment). An object written by another client has no index:
// Seek fails, and the reader still reads it from the start.
func TestJetStreamSeek(t *testing.T) {
	url, srv := natstest.Start(t)
	_, js := natstest.Connect(t, url)
	ctx := t.Context()
	s, err := storage.NewJetStream(ctx, js, storage.JetStreamConfig{Bucket: "SEEK"})
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 128 << 10
	const n = 160*chunk + 37 // three index entries, a short last chunk
	data := storagetest.Bytes(11, n)
	other := storagetest.Bytes(12, 100*chunk)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // interleaves its chunks with data's
		defer wg.Done()
		if _, err := s.Put(ctx, bytes.NewReader(other), storage.PutOptions{Size: int64(len(other))}); err != nil {
			t.Errorf("Put other: %v", err)
		}
	}()
	obj, err := s.Put(ctx, bytes.NewReader(data), storage.PutOptions{Size: n})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	sent := func() int64 {
		v, err := srv.Varz(nil)
		if err != nil {
			t.Fatal(err)
		}
		return v.OutMsgs
	}
	for _, off := range []int64{0, 1, chunk - 1, chunk, 64 * chunk, 64*chunk + 5, 130*chunk + 17, 160 * chunk, n - 1, n} {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			rc, _, err := s.Get(ctx, obj.Key)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			sk, ok := rc.(io.Seeker)
			if !ok {
				t.Fatalf("reader %T cannot seek", rc)
			}
			before := sent()
			if got, err := sk.Seek(off, io.SeekStart); err != nil || got != off {
				t.Fatalf("Seek(%d) = %d, %v", off, got, err)
			}
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatalf("read from %d: %v", off, err)
			}
			if !bytes.Equal(got, data[off:]) {
				t.Fatalf("read from %d: %d bytes, not the object's last %d", off, len(got), n-off)
			}
			// From the indexed chunk on, plus what the consumer reads ahead
			// and the API's answers; well below the object's 161 chunks.
			fromIndex := 161 - (off/chunk/64)*64
			if off > 0 && off < n {
				if d := sent() - before; d > fromIndex+20 {
					t.Errorf("Seek(%d): the server sent %d messages, want about %d chunks", off, d, fromIndex)
				}
			}
			if _, err := sk.Seek(0, io.SeekStart); err == nil {
				t.Errorf("Seek after reading: no error")
			}
		})
	}

	t.Run("no index", func(t *testing.T) {
		obs, err := js.ObjectStore(ctx, "SEEK")
		if err != nil {
			t.Fatal(err)
		}
		// Written again by nats.go's own Put, under the name this store
		// gave it.
		sum := sha256.Sum256(other)
		key := storage.Key(hex.EncodeToString(sum[:]))
		if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: key}, bytes.NewReader(other)); err != nil {
			t.Fatal(err)
		}
		rc, _, err := s.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := rc.(io.Seeker).Seek(chunk, io.SeekStart); err == nil {
			t.Fatal("Seek on an object without a chunk index: no error")
		}
		got, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(got, other) {
			t.Fatalf("read after the failed Seek: %d bytes, %v; want the whole object", len(got), err)
		}
	})
}

// TestJetStreamSlowReader: a reader paced by a slow consumer (the
// attachment service sends only as fast as the client's window allows)
// reads the whole object, however long that takes past the JetStream
// context's request timeout. The object store's own reader failed there
// ("nats: timeout"), and the download resumed every timeout.
func TestJetStreamSlowReader(t *testing.T) {
	url, _ := natstest.Start(t)
	nc, _ := natstest.Connect(t, url)
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	s, err := storage.NewJetStream(t.Context(), js, storage.JetStreamConfig{})
	if err != nil {
		t.Fatal(err)
	}
	data := storagetest.Bytes(13, 20<<17) // 20 chunks
	obj, err := s.Put(t.Context(), bytes.NewReader(data), storage.PutOptions{Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 5<<17 + 3} {
		rc, _, err := s.Get(context.WithoutCancel(t.Context()), obj.Key)
		if err != nil {
			t.Fatal(err)
		}
		if off > 0 {
			if _, err := rc.(io.Seeker).Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
		}
		var got []byte
		buf := make([]byte, 1<<17)
		for {
			n, err := rc.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("from byte %d: read failed after %d bytes: %v", off, len(got), err)
			}
			time.Sleep(100 * time.Millisecond) // 2 s for the object: twice the timeout
		}
		rc.Close()
		if !bytes.Equal(got, data[off:]) {
			t.Fatalf("from byte %d: read %d bytes, not the object's", off, len(got))
		}
	}
	// A read's consumer goes soon after the read: not one per download
	// for 5 minutes.
	stream, err := js.Stream(t.Context(), "OBJ_"+storage.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		info, err := stream.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Consumers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d consumers of finished reads left on the store's stream", info.State.Consumers)
		}
		time.Sleep(time.Second)
	}
}

// TestJetStreamMetaDisagrees: an object whose meta and chunks disagree on
// its size (a meta rewritten behind the store's back) fails the read with
// ErrSizeMismatch at its last chunk: it neither hangs waiting for bytes
// that never come nor returns bytes past the size.
func TestJetStreamMetaDisagrees(t *testing.T) {
	url, _ := natstest.Start(t)
	_, js := natstest.Connect(t, url)
	ctx := t.Context()
	s, err := storage.NewJetStream(ctx, js, storage.JetStreamConfig{Bucket: "META"})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := js.ObjectStore(ctx, "META")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		delta     int64
		dropIndex bool
	}{
		{"LongerIndexed", 100, false},
		{"ShorterIndexed", -100, false},
		{"LongerUnindexed", 100, true},
		{"ShorterUnindexed", -100, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := storagetest.Bytes(uint64(20+len(tc.name)), 3<<17+500)
			obj, err := s.Put(ctx, bytes.NewReader(data), storage.PutOptions{Size: int64(len(data))})
			if err != nil {
				t.Fatal(err)
			}
			info, err := obs.GetInfo(ctx, obj.Key)
			if err != nil {
				t.Fatal(err)
			}
			info.Size = uint64(int64(info.Size) + tc.delta)
			if tc.dropIndex {
				info.Metadata = nil
			}
			meta, err := json.Marshal(info)
			if err != nil {
				t.Fatal(err)
			}
			m := nats.NewMsg("$O.META.M." + base64.URLEncoding.EncodeToString([]byte(obj.Key)))
			m.Data = meta
			m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
			if _, err := js.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
			rc, _, err := s.Get(boundedContext(t), obj.Key)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if !errors.Is(err, storage.ErrSizeMismatch) {
				t.Fatalf("read %d bytes, err = %v; want ErrSizeMismatch", len(got), err)
			}
			if int64(len(got)) > int64(len(data))+tc.delta {
				t.Fatalf("read %d bytes of an object of %d", len(got), int64(len(data))+tc.delta)
			}
		})
	}
}

// boundedContext bounds a read that must not hang.
func boundedContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
