package filesvc_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/storagetest"
)

// faultStore is a backing store whose readers fail once, at byte at of an
// object: stalled for a while (a slow store or bus) or ended with an
// error (a store read that timed out on the service's side).
type faultStore struct {
	storage.Store
	at    int64
	stall time.Duration // 0: fail with errFault instead
	fired atomic.Bool
	seeks atomic.Int32 // seeks the store's reader made
	mu    sync.Mutex
	gets  int
}

var errFault = errors.New("nats: timeout")

func (f *faultStore) Get(ctx context.Context, key string) (io.ReadCloser, storage.Object, error) {
	rc, obj, err := f.Store.Get(ctx, key)
	if err != nil {
		return nil, obj, err
	}
	f.mu.Lock()
	f.gets++
	f.mu.Unlock()
	return &faultReader{ReadCloser: rc, f: f}, obj, nil
}

func (f *faultStore) getCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets
}

type faultReader struct {
	io.ReadCloser
	f *faultStore
	n int64
}

func (r *faultReader) Read(p []byte) (int, error) {
	if r.n < r.f.at && r.n+int64(len(p)) > r.f.at {
		p = p[:r.f.at-r.n] // stop exactly at the fault
	}
	if r.n == r.f.at && r.f.fired.CompareAndSwap(false, true) {
		if r.f.stall == 0 {
			return 0, errFault
		}
		time.Sleep(r.f.stall)
	}
	k, err := r.ReadCloser.Read(p)
	r.n += int64(k)
	return k, err
}

// Seek passes on to the store's reader, which the service asks to seek
// when it resumes a download.
func (r *faultReader) Seek(offset int64, whence int) (int64, error) {
	sk, ok := r.ReadCloser.(io.Seeker)
	if !ok {
		return 0, errors.ErrUnsupported
	}
	n, err := sk.Seek(offset, whence)
	if err == nil {
		r.n = n
		r.f.seeks.Add(1)
	}
	return n, err
}

// A download whose chunk does not come in time, or whose store read fails
// on the service's side, resumes where it was and completes; only a bus
// that answers nothing over several attempts fails it.
func TestGetResumes(t *testing.T) {
	const n = 6 << 20
	for _, tc := range []struct {
		name  string
		stall time.Duration
		// embedded: the bus's own store, which seeks to the resumed
		// offset instead of reading the bytes before it.
		embedded bool
	}{
		{"SlowChunk", 1500 * time.Millisecond, false},
		{"StoreTimedOut", 0, false},
		{"EmbeddedStoreSeeks", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gen := newGenStore()
			fs := &faultStore{Store: gen, at: 3<<20 + 1234, stall: tc.stall}
			e := startBacked(t, filesvc.Config{}, fs)
			if tc.embedded {
				fs.Store = e.bus.Service.Client.Store()
			}
			ctx := bustest.Context(t, time.Minute)
			s := e.store(t, agencyA, filesvc.WithTimeout(500*time.Millisecond))
			h := sha256.New()
			obj, err := s.Put(ctx, io.TeeReader(storagetest.Stream(4, n), h), storage.PutOptions{Size: -1})
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			if !tc.embedded {
				gen.register(obj, 4)
			}
			e.grant(t, obj.SHA256, agencyA)
			rc, _, err := s.Get(ctx, obj.Key)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			defer rc.Close()
			read, err := io.Copy(io.Discard, storage.NewVerifyingReader(rc, obj.Key, n, hex.EncodeToString(h.Sum(nil))))
			if err != nil {
				t.Fatalf("read failed after %d bytes: %v", read, err)
			}
			if !fs.fired.Load() || fs.getCount() < 2 {
				t.Fatalf("fault fired %v, %d store reads: want the fault and a resumed read", fs.fired.Load(), fs.getCount())
			}
			if tc.embedded && fs.seeks.Load() == 0 {
				t.Errorf("the resumed read of the embedded store did not seek")
			}
		})
	}

	t.Run("DeadBus", func(t *testing.T) {
		gen := newGenStore()
		e := startBacked(t, filesvc.Config{}, gen)
		ctx := bustest.Context(t, time.Minute)
		s := e.store(t, agencyA, filesvc.WithTimeout(500*time.Millisecond))
		obj, err := s.Put(ctx, storagetest.Stream(5, n), storage.PutOptions{Size: -1})
		if err != nil {
			t.Fatalf("Put: %v", err)
		}
		gen.register(obj, 5)
		e.grant(t, obj.SHA256, agencyA)
		rc, _, err := s.Get(ctx, obj.Key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		defer rc.Close()
		if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
			t.Fatalf("read: %v", err)
		}
		e.svcConn.Close() // the only service dies
		_, err = io.Copy(io.Discard, rc)
		wantErr(t, "read with no service left", err, storage.ErrUnavailable)
		t.Logf("read: %v", err)
	})
}
