package filesvc_test

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

	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/storagetest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

// TestAccess: get and stat need the agency's ref; without it the answer
// is the same whether the object exists or not.
func TestAccess(t *testing.T) {
	e := start(t, filesvc.Config{})
	ctx := bustest.Context(t, time.Minute)
	a, b := e.store(t, agencyA), e.store(t, agencyB)

	data := storagetest.Bytes(1, 300<<10)
	obj, err := a.Put(ctx, bytes.NewReader(data), storage.PutOptions{Size: int64(len(data)), MediaType: "application/pdf"})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	missing := storage.Key(sum([]byte("never stored")))

	// Not even the uploader reads before an envelope lists the object.
	msgs := map[string]string{}
	for _, key := range []string{obj.Key, missing} {
		_, err := a.Stat(ctx, key)
		wantErr(t, "Stat without a ref", err, filesvc.ErrForbidden)
		if errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat without a ref tells the object is missing: %v", err)
		}
		msgs["stat "+key] = strings.ReplaceAll(err.Error(), key, "KEY")
		rc, _, err := a.Get(ctx, key)
		if rc != nil {
			rc.Close()
		}
		wantErr(t, "Get without a ref", err, filesvc.ErrForbidden)
		msgs["get "+key] = strings.ReplaceAll(err.Error(), key, "KEY")
	}
	if msgs["stat "+obj.Key] != msgs["stat "+missing] || msgs["get "+obj.Key] != msgs["get "+missing] {
		t.Errorf("forbidden answers differ between a stored and a missing object: %q", msgs)
	}

	// Another agency's ref does not help.
	e.grant(t, obj.SHA256, agencyB)
	_, err = a.Stat(ctx, obj.Key)
	wantErr(t, "Stat with only another agency's ref", err, filesvc.ErrForbidden)

	// The agency holding the ref reads; not-found is for those allowed to know.
	st, err := b.Stat(ctx, obj.Key)
	if err != nil || st.Size != obj.Size || st.SHA256 != obj.SHA256 || st.ModTime.IsZero() {
		t.Fatalf("Stat with a ref = %+v, %v", st, err)
	}
	rc, got, err := b.Get(ctx, obj.Key)
	if err != nil {
		t.Fatalf("Get with a ref: %v", err)
	}
	back, err := io.ReadAll(storage.NewVerifyingReader(rc, obj.Key, obj.Size, obj.SHA256))
	rc.Close()
	if err != nil || !bytes.Equal(back, data) || got.Size != obj.Size {
		t.Fatalf("Get with a ref: %d bytes, %+v, %v", len(back), got, err)
	}
	e.grant(t, strings.TrimPrefix(missing, storage.KeyPrefix), agencyB)
	_, err = b.Stat(ctx, missing)
	wantErr(t, "Stat of a missing object with a ref", err, storage.ErrNotFound)

	// Delete and List are not offered to agencies.
	wantErr(t, "Delete", a.Delete(ctx, obj.Key), filesvc.ErrForbidden)
	wantErr(t, "List", a.List(ctx, func(storage.Object) error { return nil }), filesvc.ErrForbidden)
	if _, err := e.backing.Stat(ctx, obj.Key); err != nil {
		t.Errorf("object gone after a refused Delete: %v", err)
	}
}

// TestOwnToken: a client publishes only under its own agency's token and
// receives only on its own inbox, whatever keys it asks for; the service
// trusts the subject (NATS permissions enforce it, see TestPermissions).
func TestOwnToken(t *testing.T) {
	e := start(t, filesvc.Config{})
	ctx := bustest.Context(t, time.Minute)

	spy, err := nats.Connect(e.bus.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	seen := make(chan *nats.Msg, 4096)
	if _, err := spy.ChanSubscribe("axis.svc.files.>", seen); err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}

	nc := e.connect(t, agencyA)
	a := filesvc.NewStore(nc, agencyA)
	obj, err := a.Put(ctx, storagetest.Stream(2, 1<<20), storage.PutOptions{Size: -1})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	// B's ref lets A read nothing.
	e.grant(t, obj.SHA256, agencyB)
	_, _, err = a.Get(ctx, obj.Key)
	wantErr(t, "Get of an object only B may read", err, filesvc.ErrForbidden)
	e.grant(t, obj.SHA256, agencyA)
	rc, _, err := a.Get(ctx, obj.Key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if _, err := io.Copy(io.Discard, storage.NewVerifyingReader(rc, obj.Key, obj.Size, obj.SHA256)); err != nil {
		t.Fatalf("read: %v", err)
	}
	rc.Close()
	if _, err := a.Stat(ctx, obj.Key); err != nil {
		t.Fatalf("Stat: %v", err)
	}

	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	own := "axis.svc.files." + envelope.Token(agencyA) + "."
	inbox := "_INBOX_" + envelope.Token(agencyA) + "."
	n := 0
	for len(seen) > 0 {
		m := <-seen
		n++
		if !strings.HasPrefix(m.Subject, own) {
			t.Errorf("client of %s published on %s", agencyA, m.Subject)
		}
		if m.Reply != "" && !strings.HasPrefix(m.Reply, inbox) {
			t.Errorf("client of %s asked for replies on %s", agencyA, m.Reply)
		}
	}
	if n < 10 {
		t.Errorf("spy saw only %d messages of the client", n)
	}

	// A store for a code that is no agency code publishes nothing.
	for _, bad := range []string{"", "000.00.00.G22.>", "*", "a b", "a_b"} {
		_, err := filesvc.NewStore(nc, bad).Stat(ctx, obj.Key)
		wantErr(t, "Stat as "+bad, err, envelope.ErrInvalidCode)
	}
}

// TestPermissions runs the client under an agency's real NATS
// credentials: it can reach its attachments only through the service.
func TestPermissions(t *testing.T) {
	e := start(t, filesvc.Config{InboxPrefix: "_INBOX_"}, bustest.WithAuth())
	ctx := bustest.Context(t, time.Minute)
	var violations []error
	var mu sync.Mutex
	nc, err := nats.Connect(e.bus.URL(), nats.UserCredentials(e.bus.AgencyCreds(agencyA)),
		nats.CustomInboxPrefix(auth.InboxPrefix(agencyA)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			mu.Lock()
			violations = append(violations, err)
			mu.Unlock()
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", agencyA, err)
	}
	defer nc.Close()
	s := filesvc.NewStore(nc, agencyA)
	obj, err := s.Put(ctx, storagetest.Stream(3, 3<<20+1), storage.PutOptions{Size: -1})
	if err != nil {
		t.Fatalf("Put under the agency's permissions: %v", err)
	}
	e.grant(t, obj.SHA256, agencyA)
	rc, _, err := s.Get(ctx, obj.Key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if _, err := io.Copy(io.Discard, storage.NewVerifyingReader(rc, obj.Key, obj.Size, obj.SHA256)); err != nil {
		t.Fatalf("read: %v", err)
	}
	rc.Close()
	if _, err := s.Stat(ctx, obj.Key); err != nil {
		t.Fatalf("Stat: %v", err)
	}
	// The object store itself is out of reach.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(violations) > 0 {
		t.Errorf("the client broke the agency's permissions: %v", violations)
	}
	mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := js.ObjectStore(sctx, storage.DefaultBucket); err == nil {
		t.Error("agency opened the object store directly")
	}
	// Claiming to be another agency gets no answer (the server drops the
	// publish), so the client reports the service unavailable.
	_, err = filesvc.NewStore(nc, agencyB, filesvc.WithTimeout(300*time.Millisecond)).Stat(ctx, obj.Key)
	wantErr(t, "Stat on another agency's subject", err, storage.ErrUnavailable)
}

// TestLarge streams 256 MiB each way, generated on the fly, and measures
// the heap: the window, not the object, bounds memory.
func TestLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("256 MiB each way")
	}
	const n = 256 << 20
	// Service: a backing store that keeps nothing, so that the heap is
	// the bus's routing, the service and the client.
	t.Run("Service", func(t *testing.T) {
		gen := newGenStore()
		e := startBacked(t, filesvc.Config{}, gen)
		putPeak, getPeak := streamLarge(t, e, n, func(obj storage.Object, seed uint64) { gen.register(obj, seed) })
		const limit = 64 << 20
		if putPeak > limit || getPeak > limit {
			t.Errorf("heap grew by %d MiB (put) and %d MiB (get), want under %d MiB", putPeak>>20, getPeak>>20, limit>>20)
		}
	})
	// EmbeddedStore: the same through the bus's object store, whose
	// server buffers and read-ahead (NATS pending limits, block cache)
	// share this process's heap; logged, not asserted.
	t.Run("EmbeddedStore", func(t *testing.T) {
		e := start(t, filesvc.Config{})
		streamLarge(t, e, n, nil)
	})
}

// streamLarge puts and gets n generated bytes through e's service, checks
// them and returns the heap peaks above the baseline.
func streamLarge(t *testing.T, e *env, n int64, register func(storage.Object, uint64)) (putPeak, getPeak uint64) {
	ctx := bustest.Context(t, 3*time.Minute)
	var natsErrs []error
	var mu sync.Mutex
	nc := e.connect(t, agencyA, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		mu.Lock()
		natsErrs = append(natsErrs, err)
		mu.Unlock()
	}))
	s := filesvc.NewStore(nc, agencyA)
	const seed = 9

	h := sha256.New()
	heap := sampleHeap()
	start := time.Now()
	obj, err := s.Put(ctx, io.TeeReader(storagetest.Stream(seed, n), h), storage.PutOptions{Size: -1})
	took := time.Since(start)
	putPeak = heap.finish()
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if want := hex.EncodeToString(h.Sum(nil)); obj.SHA256 != want || obj.Size != n {
		t.Fatalf("Put = %+v, want %s of %d bytes", obj, want, n)
	}
	t.Logf("put %d MiB: %.0f MiB/s, heap peak +%.1f MiB", n>>20, float64(n)/(1<<20)/took.Seconds(), float64(putPeak)/(1<<20))
	if register != nil {
		register(obj, seed)
	}

	e.grant(t, obj.SHA256, agencyA)
	heap = sampleHeap()
	start = time.Now()
	rc, _, err := s.Get(ctx, obj.Key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	read, err := io.Copy(io.Discard, storage.NewVerifyingReader(rc, obj.Key, n, obj.SHA256))
	rc.Close()
	took = time.Since(start)
	getPeak = heap.finish()
	if err != nil {
		t.Fatalf("read after %d bytes: %v", read, err)
	}
	t.Logf("get %d MiB: %.0f MiB/s, heap peak +%.1f MiB", n>>20, float64(n)/(1<<20)/took.Seconds(), float64(getPeak)/(1<<20))

	// A slow reader is paced by the window: nothing piles up or drops.
	rc, _, err = s.Get(ctx, obj.Key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	buf := make([]byte, 64<<10)
	for i := range 64 {
		if _, err := io.ReadFull(rc, buf); err != nil {
			t.Fatalf("slow read %d: %v", i, err)
		}
		time.Sleep(time.Millisecond)
	}
	rc.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(natsErrs) > 0 {
		t.Errorf("NATS errors on the client's connection: %v", natsErrs)
	}
	return putPeak, getPeak
}

// TestCancel: a cancelled put stores nothing; a cancelled or closed get
// ends the transfer on the service too.
func TestCancel(t *testing.T) {
	e := start(t, filesvc.Config{MaxConcurrent: 1})
	ctx := bustest.Context(t, time.Minute)
	s := e.store(t, agencyA)
	before := e.objectCount(t)

	t.Run("Put", func(t *testing.T) {
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		p := &producer{r: storagetest.Stream(4, 1<<40), at: 4 << 20, hook: cancel}
		_, err := s.Put(pctx, p, storage.PutOptions{Size: -1})
		wantErr(t, "Put cancelled mid-upload", err, context.Canceled)
		if p.n > 4<<20+filesvc.ChunkSize {
			t.Errorf("Put read %d bytes after the cancel at %d", p.n, 4<<20)
		}
		if n := e.objectCount(t); n != before {
			t.Errorf("%d objects after a cancelled Put, want %d", n, before)
		}
		e.waitNoLeftovers(t)
	})

	obj, err := s.Put(ctx, storagetest.Stream(5, 8<<20), storage.PutOptions{Size: -1})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	e.grant(t, obj.SHA256, agencyA)

	t.Run("Get", func(t *testing.T) {
		gctx, cancel := context.WithCancel(ctx)
		rc, _, err := s.Get(gctx, obj.Key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		defer rc.Close()
		if _, err := io.ReadFull(rc, make([]byte, 1<<20)); err != nil {
			t.Fatalf("read: %v", err)
		}
		cancel()
		_, err = io.Copy(io.Discard, rc)
		wantErr(t, "read after cancel", err, context.Canceled)
		// The service dropped the transfer: with one transfer allowed at
		// once, the next Get goes through.
		waitGet(t, s, obj)
	})

	t.Run("Close", func(t *testing.T) {
		rc, _, err := s.Get(ctx, obj.Key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
			t.Fatalf("read: %v", err)
		}
		// One transfer at a time: a second is refused while this one runs.
		_, _, err = s.Get(ctx, obj.Key)
		wantErr(t, "second Get", err, filesvc.ErrRateLimited)
		rc.Close()
		if _, err := rc.Read(make([]byte, 10)); err == nil {
			t.Error("Read after Close succeeded")
		}
		waitGet(t, s, obj)
	})
}

// TestAbandoned: a transfer whose client left before its first answer
// (timed out, crashed) ends at once, not after Config.IdleTimeout: NATS
// reports that nobody listens on the client's inbox any more.
func TestAbandoned(t *testing.T) {
	e := start(t, filesvc.Config{MaxConcurrent: 1, IdleTimeout: time.Hour})
	ctx := bustest.Context(t, time.Minute)
	nc := e.connect(t, agencyA)
	s := filesvc.NewStore(nc, agencyA)
	obj, err := s.Put(ctx, storagetest.Stream(8, 2<<20), storage.PutOptions{Size: -1})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	e.grant(t, obj.SHA256, agencyA)
	pre := "axis.svc.files." + envelope.Token(agencyA) + "."
	for _, m := range []*nats.Msg{
		msg(pre+"get", nil, "Axis-File-Msg", "request", "Axis-File-Key", obj.Key),
		msg(pre+"put", nil, "Axis-File-Msg", "request"),
	} {
		m.Reply = nc.NewInbox() // nobody subscribes there
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		// With one transfer allowed at once, this waits for the abandoned one.
		waitGet(t, s, obj)
	}
}

// waitGet reads obj whole once the service lets a transfer start again.
func waitGet(t *testing.T, s storage.Store, obj storage.Object) {
	t.Helper()
	ctx := bustest.Context(t, time.Minute)
	deadline := time.Now().Add(10 * time.Second)
	for {
		rc, _, err := s.Get(ctx, obj.Key)
		if errors.Is(err, filesvc.ErrRateLimited) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("Get after the previous transfer ended: %v", err)
		}
		_, err = io.Copy(io.Discard, storage.NewVerifyingReader(rc, obj.Key, obj.Size, obj.SHA256))
		rc.Close()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return
	}
}

// TestUnavailable: a service that stops or vanishes mid-transfer gives
// storage.ErrUnavailable, from its answer or from the client's timeout.
func TestUnavailable(t *testing.T) {
	e := start(t, filesvc.Config{DrainTimeout: 300 * time.Millisecond})
	ctx := bustest.Context(t, time.Minute)
	const clientTimeout = 20 * time.Second
	s := e.store(t, agencyA, filesvc.WithTimeout(clientTimeout))
	obj, err := s.Put(ctx, storagetest.Stream(6, 8<<20), storage.PutOptions{Size: -1})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	e.grant(t, obj.SHA256, agencyA)

	t.Run("StopMidPut", func(t *testing.T) {
		go func() { time.Sleep(500 * time.Millisecond); e.svc.Stop() }()
		start := time.Now()
		_, err := s.Put(ctx, &slowReader{}, storage.PutOptions{Size: -1})
		wantErr(t, "Put while the service stops", err, storage.ErrUnavailable)
		if !strings.Contains(err.Error(), "stopped") || time.Since(start) >= clientTimeout {
			t.Errorf("Put: %v after %s: want the service's answer, not the client's timeout", err, time.Since(start))
		}
		t.Logf("Put failed %s after it started: %v", time.Since(start).Round(time.Millisecond), err)
		e.waitNoLeftovers(t)
	})

	t.Run("StopMidGet", func(t *testing.T) {
		svc := e.serve(t, filesvc.Config{DrainTimeout: 300 * time.Millisecond})
		rc, _, err := s.Get(ctx, obj.Key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		defer rc.Close()
		if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
			t.Fatalf("read: %v", err)
		}
		// The reader pauses; the service waits for acks, then stops.
		svc.Stop()
		start := time.Now()
		_, err = io.Copy(io.Discard, rc)
		wantErr(t, "read after the service stopped", err, storage.ErrUnavailable)
		if time.Since(start) >= clientTimeout {
			t.Errorf("read: %v after %s: want the service's answer", err, time.Since(start))
		}
	})

	t.Run("ConnectionLost", func(t *testing.T) {
		svcConn, err := nats.Connect(e.bus.URL())
		if err != nil {
			t.Fatal(err)
		}
		svc, err := filesvc.Serve(ctx, svcConn, e.backing, e.refs, filesvc.Config{Logger: bustest.Logger()})
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Stop()
		s := e.store(t, agencyA, filesvc.WithTimeout(500*time.Millisecond))
		rc, _, err := s.Get(ctx, obj.Key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		defer rc.Close()
		if _, err := io.ReadFull(rc, make([]byte, 1000)); err != nil {
			t.Fatalf("read: %v", err)
		}
		svcConn.Close() // the service process dies without a word
		_, err = io.Copy(io.Discard, rc)
		wantErr(t, "read after the service vanished", err, storage.ErrUnavailable)
		t.Logf("Get: %v", err)
		// An upload finds out at its next chunk: nobody listens any more.
		_, err = s.Put(ctx, &slowReader{}, storage.PutOptions{Size: -1})
		wantErr(t, "Put with no service", err, storage.ErrUnavailable)
		_, err = s.Stat(ctx, obj.Key)
		wantErr(t, "Stat with no service", err, storage.ErrUnavailable)
		t.Logf("Stat: %v", err)
	})
}

// serve starts one more service on the env's connection.
func (e *env) serve(t *testing.T, cfg filesvc.Config) *filesvc.Service {
	t.Helper()
	cfg.Logger = bustest.Logger()
	svc, err := filesvc.Serve(bustest.Context(t, 10*time.Second), e.svcConn, e.backing, e.refs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	return svc
}

// TestTooLarge: uploads over Config.MaxSize fail and leave nothing.
func TestTooLarge(t *testing.T) {
	const max = 1 << 20
	e := start(t, filesvc.Config{MaxSize: max})
	ctx := bustest.Context(t, time.Minute)
	s := e.store(t, agencyA)

	p := &producer{r: storagetest.Stream(7, 2*max)}
	_, err := s.Put(ctx, p, storage.PutOptions{Size: 2 * max})
	wantErr(t, "Put announcing 2 MiB", err, filesvc.ErrTooLarge)
	if p.n != 0 {
		t.Errorf("Put announcing too much read %d bytes first", p.n)
	}
	_, err = s.Put(ctx, storagetest.Stream(7, 2*max), storage.PutOptions{Size: -1})
	wantErr(t, "Put of 2 MiB", err, filesvc.ErrTooLarge)
	t.Logf("Put: %v", err)
	if _, err := s.Put(ctx, storagetest.Stream(7, max), storage.PutOptions{Size: -1}); err != nil {
		t.Errorf("Put of exactly MaxSize: %v", err)
	}
	if n := e.objectCount(t); n != 1 {
		t.Errorf("%d objects, want 1", n)
	}
	e.waitNoLeftovers(t)
}

// TestRateLimited: requests beyond an agency's rate are refused, with a
// message saying so; other agencies are not affected.
func TestRateLimited(t *testing.T) {
	e := start(t, filesvc.Config{RatePerSecond: 1, RateBurst: 3})
	ctx := bustest.Context(t, time.Minute)
	a, b := e.store(t, agencyA), e.store(t, agencyB)
	key := storage.Key(sum([]byte("x")))
	for range 3 {
		_, err := a.Stat(ctx, key)
		wantErr(t, "Stat within the burst", err, filesvc.ErrForbidden)
	}
	_, err := a.Stat(ctx, key)
	wantErr(t, "Stat beyond the burst", err, filesvc.ErrRateLimited)
	if !strings.Contains(err.Error(), "requests per second") || !strings.Contains(err.Error(), agencyA) {
		t.Errorf("rate limit error does not say what happened: %v", err)
	}
	t.Logf("Stat: %v", err)
	_, err = b.Stat(ctx, key)
	wantErr(t, "Stat by another agency", err, filesvc.ErrForbidden)
}

// TestQueueGroup: several service processes share the requests; each
// transfer's messages reach the process serving it, and when one stops
// the others take the new requests.
func TestQueueGroup(t *testing.T) {
	e := start(t, filesvc.Config{})
	ctx := bustest.Context(t, time.Minute)
	conn2, err := nats.Connect(e.bus.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	svc2, err := filesvc.Serve(ctx, conn2, e.backing, e.refs, filesvc.Config{Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer svc2.Stop()
	s := e.store(t, agencyA)
	// roundTrip runs in goroutines: it reports, the test goroutine fails.
	roundTrip := func(i int) error {
		data := storagetest.Bytes(uint64(100+i), 700<<10)
		obj, err := s.Put(ctx, bytes.NewReader(data), storage.PutOptions{Size: -1})
		if err != nil {
			return fmt.Errorf("Put %d: %w", i, err)
		}
		if _, err := e.refs.Put(ctx, record.FileRefKey(obj.SHA256, agencyA), []byte("test")); err != nil {
			return fmt.Errorf("grant %d: %w", i, err)
		}
		rc, _, err := s.Get(ctx, obj.Key)
		if err != nil {
			return fmt.Errorf("Get %d: %w", i, err)
		}
		back, err := io.ReadAll(storage.NewVerifyingReader(rc, obj.Key, obj.Size, obj.SHA256))
		rc.Close()
		if err != nil || !bytes.Equal(back, data) {
			return fmt.Errorf("read %d: %d bytes, %v", i, len(back), err)
		}
		return nil
	}
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { errs[i] = roundTrip(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	e.svc.Stop()
	for i := range 4 {
		if err := roundTrip(10 + i); err != nil {
			t.Fatalf("after one service stopped: %v", err)
		}
	}
}

// TestSystemReadsForItsAgencies: a document system reads what an agency it
// serves holds; the directory's "no" is a refusal, a directory that could
// not be read now is not (the system's client asks again).
func TestSystemReadsForItsAgencies(t *testing.T) {
	var (
		mu      sync.Mutex
		answer  error
		checked []string
	)
	e := start(t, filesvc.Config{SystemServes: func(_ context.Context, id, agency string) error {
		mu.Lock()
		defer mu.Unlock()
		checked = append(checked, id+" "+agency)
		return answer
	}})
	ctx := bustest.Context(t, time.Minute)
	obj := e.putDirect(t, bytes.NewReader(storagetest.Bytes(3, 10<<10)))
	e.grant(t, obj.SHA256, agencyB)
	sys := e.store(t, "=sys-a")
	for _, tc := range []struct {
		name   string
		answer error
		want   error
	}{
		{"served", nil, nil},
		{"not served", fmt.Errorf("%w: system sys-a, agency %s", filesvc.ErrForbidden, agencyB), filesvc.ErrForbidden},
		{"directory unreadable", fmt.Errorf("read agency %s: %w: %w", agencyB, failover.ErrUnavailable, nats.ErrNoResponders), storage.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			answer, checked = tc.answer, nil
			mu.Unlock()
			_, err := sys.Stat(ctx, obj.Key)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Stat as system sys-a: err = %v, want %v", err, tc.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(checked, []string{"sys-a " + agencyB}) {
				t.Errorf("directory asked %q, want only about the holder %s", checked, agencyB)
			}
		})
	}
}
