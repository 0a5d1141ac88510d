package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
