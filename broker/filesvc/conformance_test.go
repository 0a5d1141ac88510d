package filesvc_test

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/storagetest"
)

// granted is the agency's Store as the conformance suite needs it. Put,
// Get and Stat go through the service (filesvc.NewStore); before each Get
// and Stat the agency is granted the key, as if it had received an
// envelope listing it, so the suite sees the store an entitled agency
// sees (ErrNotFound included). Delete and List are not offered to
// agencies; the suite's checks of them (and its List-based checks of what
// Put left) go to the backing store, as an operator would.
type granted struct {
	storage.Store
	e *env
	t *testing.T
}

func (g *granted) grant(key string) {
	if sha, err := storage.CheckKey(key); err == nil {
		g.e.grant(g.t, sha, agencyA)
	}
}

func (g *granted) Get(ctx context.Context, key string) (io.ReadCloser, storage.Object, error) {
	g.grant(key)
	return g.Store.Get(ctx, key)
}

func (g *granted) Stat(ctx context.Context, key string) (storage.Object, error) {
	g.grant(key)
	return g.Store.Stat(ctx, key)
}

func (g *granted) Delete(ctx context.Context, key string) error {
	return g.e.backing.Delete(ctx, key)
}

func (g *granted) List(ctx context.Context, fn func(storage.Object) error) error {
	return g.e.backing.List(ctx, fn)
}

// TestConformance runs the shared suite against the client, one bus (a
// fresh bucket) per test.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	envs := map[storage.Store]*env{}
	envOf := func(s storage.Store) *env {
		mu.Lock()
		defer mu.Unlock()
		return envs[s]
	}
	newStore := func(t *testing.T) storage.Store {
		// The suite tests the store, not the limits: it runs six Puts at once.
		e := start(t, filesvc.Config{RatePerSecond: -1, MaxConcurrent: -1})
		s := &granted{Store: e.store(t, agencyA), e: e, t: t}
		mu.Lock()
		envs[s] = e
		mu.Unlock()
		return s
	}
	storagetest.Run(t, newStore, storagetest.Options{
		// Behind the service's back, straight in the object store.
		Tamper: func(t *testing.T, s storage.Store, key string) {
			obs, err := envOf(s).js.ObjectStore(t.Context(), storage.DefaultBucket)
			if err != nil {
				t.Fatal(err)
			}
			data, err := obs.GetBytes(t.Context(), key)
			if err != nil {
				t.Fatalf("tamper: get %s: %v", key, err)
			}
			data[len(data)/2] ^= 0xff
			if _, err := obs.PutBytes(t.Context(), key, data); err != nil {
				t.Fatalf("tamper: put %s: %v", key, err)
			}
		},
		Leftovers: func(t *testing.T, s storage.Store) []string { return envOf(s).leftovers(t) },
		LargeSize: 32 << 20, // TestLarge streams 256 MiB
	})
}
