package filesvc_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/storagetest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Agencies of the tests.
const (
	agencyA = "000.00.00.G22"
	agencyB = "000.00.00.H41"
)

// env is a running bus with the attachment service over the bus's own
// embedded store.
type env struct {
	bus     *bustest.Bus
	js      jetstream.JetStream
	refs    jetstream.KeyValue
	backing storage.Store
	svc     *filesvc.Service
	svcConn *nats.Conn
}

// start starts a bus and the service on a connection of its own (so a
// test can cut it), stopped at cleanup before the bus.
func start(t testing.TB, cfg filesvc.Config, opts ...bustest.Option) *env {
	t.Helper()
	return startBacked(t, cfg, nil, opts...)
}

// startBacked is start with another backing store (nil: the bus's).
func startBacked(t testing.TB, cfg filesvc.Config, backing storage.Store, opts ...bustest.Option) *env {
	t.Helper()
	bus := bustest.Start(t, append(opts, bustest.WithoutFiles())...)
	e := &env{bus: bus, js: bus.Service.Client.JetStream(), backing: backing}
	if backing == nil {
		e.backing = bus.Service.Client.Store()
	}
	var err error
	if e.refs, err = e.js.KeyValue(context.Background(), record.FileRefsBucket); err != nil {
		t.Fatalf("refs bucket: %v", err)
	}
	e.svcConn, err = nats.Connect(bus.URL(), append(bus.AdminOptions(), nats.Name("filesvc test service"))...)
	if err != nil {
		t.Fatalf("connect service: %v", err)
	}
	t.Cleanup(e.svcConn.Close)
	if cfg.Logger == nil {
		cfg.Logger = bustest.Logger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if e.svc, err = filesvc.Serve(ctx, e.svcConn, e.backing, e.refs, cfg); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(e.svc.Stop)
	return e
}

// connect opens an agency's connection as the bus's agencies do: replies
// under _INBOX_<token>.
func (e *env) connect(t testing.TB, agency string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.CustomInboxPrefix("_INBOX_" + envelope.Token(agency)), nats.Name("agency " + agency)}, opts...)
	nc, err := nats.Connect(e.bus.URL(), opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", agency, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// store is agency's Store through the service.
func (e *env) store(t testing.TB, agency string, opts ...filesvc.Option) storage.Store {
	return filesvc.NewStore(e.connect(t, agency), agency, opts...)
}

// grant records that agency sent or received an envelope listing sha, as
// the tracker does.
func (e *env) grant(t testing.TB, sha, agency string) {
	t.Helper()
	if _, err := e.refs.Put(context.Background(), record.FileRefKey(sha, agency), []byte("test-envelope")); err != nil {
		t.Fatalf("grant %s to %s: %v", sha, agency, err)
	}
}

// putDirect stores data in the backing store, as another agency would
// have through the service.
func (e *env) putDirect(t testing.TB, r io.Reader) storage.Object {
	t.Helper()
	obj, err := e.backing.Put(context.Background(), r, storage.PutOptions{Size: -1})
	if err != nil {
		t.Fatalf("backing Put: %v", err)
	}
	return obj
}

// leftovers lists what uploads left in the embedded store besides
// objects under content addresses: orphaned chunks and other objects.
func (e *env) leftovers(t testing.TB) []string {
	t.Helper()
	ctx := context.Background()
	bucket := storage.DefaultBucket
	obs, err := e.js.ObjectStore(ctx, bucket)
	if err != nil {
		t.Fatalf("leftovers: object store: %v", err)
	}
	live := map[string]bool{}
	var left []string
	infos, err := obs.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		t.Fatalf("leftovers: list: %v", err)
	}
	for _, info := range infos {
		live[info.NUID] = true
		if !strings.HasPrefix(info.Name, storage.KeyPrefix) {
			left = append(left, "object "+info.Name)
		}
	}
	stream, err := e.js.Stream(ctx, "OBJ_"+bucket)
	if err != nil {
		t.Fatalf("leftovers: stream: %v", err)
	}
	si, err := stream.Info(ctx, jetstream.WithSubjectFilter("$O."+bucket+".C.>"))
	if err != nil {
		t.Fatalf("leftovers: stream info: %v", err)
	}
	for subj, n := range si.State.Subjects {
		if nuid := subj[strings.LastIndexByte(subj, '.')+1:]; !live[nuid] {
			left = append(left, fmt.Sprintf("%d orphaned chunks on %s", n, subj))
		}
	}
	slices.Sort(left)
	return left
}

// waitNoLeftovers gives failed uploads a moment to clean up.
func (e *env) waitNoLeftovers(t testing.TB) {
	t.Helper()
	var left []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if left = e.leftovers(t); len(left) == 0 {
			return
		}
	}
	t.Errorf("left behind by uploads: %v", left)
}

// objectCount counts the objects of the embedded store.
func (e *env) objectCount(t testing.TB) int {
	t.Helper()
	n := 0
	if err := e.backing.List(context.Background(), func(storage.Object) error { n++; return nil }); err != nil {
		t.Fatalf("List: %v", err)
	}
	return n
}

// heapSampler records the peak HeapInuse while it runs.
type heapSampler struct {
	base uint64
	peak atomic.Uint64
	stop chan struct{}
	done sync.WaitGroup
}

func sampleHeap() *heapSampler {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := &heapSampler{base: ms.HeapInuse, stop: make(chan struct{})}
	h.peak.Store(ms.HeapInuse)
	h.done.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > h.peak.Load() {
				h.peak.Store(ms.HeapInuse)
			}
		}
	})
	return h
}

// finish stops sampling and returns the peak above the baseline.
func (h *heapSampler) finish() uint64 {
	close(h.stop)
	h.done.Wait()
	if p := h.peak.Load(); p > h.base {
		return p - h.base
	}
	return 0
}

// producer yields n generated bytes; after at bytes it calls hook once.
type producer struct {
	r    io.Reader
	n    int64
	at   int64
	hook func()
}

func (p *producer) Read(b []byte) (int, error) {
	if p.hook != nil && p.n+int64(len(b)) > p.at {
		b = b[:max(p.at-p.n, 1)]
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.hook != nil && p.n >= p.at {
		h := p.hook
		p.hook = nil
		h()
	}
	return n, err
}

// slowReader yields 64 KiB every few milliseconds, forever: an upload
// that never ends on its own.
type slowReader struct{ n int64 }

func (s *slowReader) Read(b []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	b = b[:min(len(b), 64<<10)]
	for i := range b {
		b[i] = byte(s.n + int64(i))
	}
	s.n += int64(len(b))
	return len(b), nil
}

// genStore keeps no bytes: Put hashes what it reads and drops it, Get
// regenerates an object registered with its storagetest.Stream seed. It
// lets TestLarge measure the service and the client without the embedded
// store's own buffers.
type genStore struct {
	mu   sync.Mutex
	objs map[string]storage.Object
	seed map[string]uint64
}

func newGenStore() *genStore {
	return &genStore{objs: map[string]storage.Object{}, seed: map[string]uint64{}}
}

// register makes key readable as storagetest.Stream(seed, obj.Size).
func (g *genStore) register(obj storage.Object, seed uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seed[obj.Key] = seed
}

func (g *genStore) Put(ctx context.Context, r io.Reader, opts storage.PutOptions) (storage.Object, error) {
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return storage.Object{}, err
		}
		k, err := r.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return storage.Object{}, err
		}
	}
	sha := hex.EncodeToString(h.Sum(nil))
	obj := storage.Object{Key: storage.Key(sha), SHA256: sha, Size: n, ModTime: time.Now()}
	g.mu.Lock()
	g.objs[obj.Key] = obj
	g.mu.Unlock()
	return obj, nil
}

func (g *genStore) Get(ctx context.Context, key string) (io.ReadCloser, storage.Object, error) {
	g.mu.Lock()
	obj, ok := g.objs[key]
	seed, known := g.seed[key]
	g.mu.Unlock()
	if !ok || !known {
		return nil, storage.Object{}, fmt.Errorf("%w: %s", storage.ErrNotFound, key)
	}
	return io.NopCloser(storagetest.Stream(seed, obj.Size)), obj, nil
}

func (g *genStore) Stat(ctx context.Context, key string) (storage.Object, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	obj, ok := g.objs[key]
	if !ok {
		return storage.Object{}, fmt.Errorf("%w: %s", storage.ErrNotFound, key)
	}
	return obj, nil
}

func (g *genStore) Delete(ctx context.Context, key string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.objs, key)
	return nil
}

func (g *genStore) List(ctx context.Context, fn func(storage.Object) error) error {
	g.mu.Lock()
	objs := make([]storage.Object, 0, len(g.objs))
	for _, o := range g.objs {
		objs = append(objs, o)
	}
	g.mu.Unlock()
	for _, o := range objs {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}
