package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/natstest"
)

// fakeStore lists and deletes a fixed set of objects; it is enough for GC.
type fakeStore struct {
	objs      map[string]storage.Object
	deleted   []string
	listErr   error
	deleteErr map[string]error
}

func (f *fakeStore) Put(context.Context, io.Reader, storage.PutOptions) (storage.Object, error) {
	panic("unused")
}

func (f *fakeStore) Get(context.Context, string) (io.ReadCloser, storage.Object, error) {
	panic("unused")
}

func (f *fakeStore) Stat(context.Context, string) (storage.Object, error) { panic("unused") }

func (f *fakeStore) Delete(_ context.Context, key string) error {
	if err := f.deleteErr[key]; err != nil {
		return err
	}
	delete(f.objs, key)
	f.deleted = append(f.deleted, key)
	return nil
}

func (f *fakeStore) List(_ context.Context, fn func(storage.Object) error) error {
	if f.listErr != nil {
		return f.listErr
	}
	for _, k := range slices.Sorted(maps.Keys(f.objs)) {
		if err := fn(f.objs[k]); err != nil {
			return err
		}
	}
	return nil
}

// sweepingStore is a fakeStore that also sweeps.
type sweepingStore struct {
	fakeStore
	swept     int
	sweepArgs []string
	sweepErr  error
}

func (s *sweepingStore) Sweep(_ context.Context, olderThan time.Duration, dryRun bool) (int, error) {
	s.sweepArgs = append(s.sweepArgs, fmt.Sprintf("%s dry=%v", olderThan, dryRun))
	return s.swept, s.sweepErr
}

func key(c byte) string { return storage.Key(strings.Repeat(string(c), 64)) }

func TestGC(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old, young := now.Add(-48*time.Hour), now.Add(-time.Hour)
	obj := func(c byte, size int64, mod time.Time) storage.Object {
		return storage.Object{Key: key(c), SHA256: strings.Repeat(string(c), 64), Size: size, ModTime: mod}
	}
	objects := func() map[string]storage.Object {
		return map[string]storage.Object{
			key('a'): obj('a', 10, old),         // old, referenced
			key('b'): obj('b', 20, old),         // old, unreferenced: goes
			key('c'): obj('c', 30, young),       // young, unreferenced: grace
			key('d'): obj('d', 40, time.Time{}), // unknown age: kept
			key('e'): obj('e', 50, old),         // old, unreferenced: goes
		}
	}
	refs := func(keys ...string) func(string) bool {
		return func(k string) bool { return slices.Contains(keys, k) }
	}
	boom := errors.New("disk on fire")

	tests := []struct {
		name        string
		objs        map[string]storage.Object
		referenced  func(string) bool
		olderThan   time.Duration
		dryRun      bool
		listErr     error
		deleteErr   map[string]error
		wantDeleted []string // deleted from the store
		wantSeen    []string // passed to OnObject
		want        storage.GCResult
		wantErr     error  // errors.Is
		wantErrText string // or a substring
	}{
		{
			name:      "empty store",
			objs:      map[string]storage.Object{},
			olderThan: 24 * time.Hour, referenced: refs(),
			want: storage.GCResult{},
		},
		{
			name:      "deletes old unreferenced only",
			objs:      objects(),
			olderThan: 24 * time.Hour, referenced: refs(key('a')),
			wantDeleted: []string{key('b'), key('e')},
			wantSeen:    []string{key('b'), key('e')},
			want:        storage.GCResult{Scanned: 5, Referenced: 1, Recent: 2, Deleted: 2, DeletedBytes: 70},
		},
		{
			name:      "never a referenced object, however old",
			objs:      objects(),
			olderThan: time.Nanosecond, referenced: refs(key('a'), key('b'), key('c'), key('d'), key('e')),
			want: storage.GCResult{Scanned: 5, Referenced: 5},
		},
		{
			name:      "short grace takes young objects too",
			objs:      objects(),
			olderThan: time.Minute, referenced: refs(key('a')),
			wantDeleted: []string{key('b'), key('c'), key('e')},
			wantSeen:    []string{key('b'), key('c'), key('e')},
			want:        storage.GCResult{Scanned: 5, Referenced: 1, Recent: 1, Deleted: 3, DeletedBytes: 100},
		},
		{
			name:      "dry run deletes nothing",
			objs:      objects(),
			olderThan: 24 * time.Hour, referenced: refs(key('a')), dryRun: true,
			wantSeen: []string{key('b'), key('e')},
			want:     storage.GCResult{Scanned: 5, Referenced: 1, Recent: 2, Deleted: 2, DeletedBytes: 70},
		},
		{
			name: "reference appearing during the run protects",
			objs: objects(),
			referenced: func() func(string) bool {
				asked := map[string]int{}
				return func(k string) bool {
					asked[k]++
					return k == key('a') || (k == key('e') && asked[k] > 1)
				}
			}(),
			olderThan:   24 * time.Hour,
			wantDeleted: []string{key('b')},
			wantSeen:    []string{key('b')},
			want:        storage.GCResult{Scanned: 5, Referenced: 2, Recent: 2, Deleted: 1, DeletedBytes: 20},
		},
		{
			name:      "delete error stops with partial result",
			objs:      objects(),
			olderThan: 24 * time.Hour, referenced: refs(key('a')),
			deleteErr:   map[string]error{key('e'): boom},
			wantDeleted: []string{key('b')},
			wantSeen:    []string{key('b')},
			want:        storage.GCResult{Scanned: 5, Referenced: 1, Recent: 2, Deleted: 1, DeletedBytes: 20},
			wantErr:     boom,
		},
		{
			name:      "list error",
			objs:      objects(),
			olderThan: 24 * time.Hour, referenced: refs(),
			listErr: storage.ErrUnavailable,
			wantErr: storage.ErrUnavailable,
		},
		{
			name: "no Referenced", objs: objects(), olderThan: time.Hour,
			wantErrText: "no Referenced",
		},
		{
			name: "zero grace", objs: objects(), referenced: refs(),
			wantErrText: "grace period",
		},
		{
			name: "negative grace", objs: objects(), referenced: refs(), olderThan: -time.Hour,
			wantErrText: "grace period",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &fakeStore{objs: tt.objs, listErr: tt.listErr, deleteErr: tt.deleteErr}
			var seen []string
			var seenDeleted []bool
			res, err := storage.GC(t.Context(), fs, storage.GCOptions{
				Referenced: tt.referenced,
				OlderThan:  tt.olderThan,
				DryRun:     tt.dryRun,
				Now:        func() time.Time { return now },
				OnObject: func(o storage.Object, deleted bool) {
					seen = append(seen, o.Key)
					seenDeleted = append(seenDeleted, deleted)
				},
			})
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.wantErrText != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErrText) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErrText)
				}
				return
			case err != nil:
				t.Fatalf("GC: %v", err)
			}
			if res != tt.want {
				t.Errorf("result = %+v, want %+v", res, tt.want)
			}
			if !slices.Equal(fs.deleted, tt.wantDeleted) {
				t.Errorf("deleted %v, want %v", fs.deleted, tt.wantDeleted)
			}
			if !slices.Equal(seen, tt.wantSeen) {
				t.Errorf("OnObject saw %v, want %v", seen, tt.wantSeen)
			}
			for i, d := range seenDeleted {
				if d == tt.dryRun {
					t.Errorf("OnObject(%s, deleted=%v) in a run with DryRun=%v", seen[i], d, tt.dryRun)
				}
			}
		})
	}
}

func TestGCSweeps(t *testing.T) {
	for _, dry := range []bool{false, true} {
		s := &sweepingStore{fakeStore: fakeStore{objs: map[string]storage.Object{}}, swept: 3}
		res, err := storage.GC(t.Context(), s, storage.GCOptions{
			Referenced: func(string) bool { return false },
			OlderThan:  time.Hour,
			DryRun:     dry,
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Swept != 3 {
			t.Errorf("Swept = %d, want 3", res.Swept)
		}
		if want := []string{fmt.Sprintf("1h0m0s dry=%v", dry)}; !slices.Equal(s.sweepArgs, want) {
			t.Errorf("Sweep called with %v, want %v", s.sweepArgs, want)
		}
	}
	s := &sweepingStore{fakeStore: fakeStore{objs: map[string]storage.Object{}}, sweepErr: storage.ErrUnavailable}
	_, err := storage.GC(t.Context(), s, storage.GCOptions{Referenced: func(string) bool { return false }, OlderThan: time.Hour})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("sweep failing: err = %v, want ErrUnavailable", err)
	}
}

// TestGCJetStream runs GC on the embedded store, with a clock an hour
// ahead so that everything stored is past a one-minute grace.
func TestGCJetStream(t *testing.T) {
	url, _ := natstest.Start(t)
	_, js := natstest.Connect(t, url)
	ctx := t.Context()
	s, err := storage.NewJetStream(ctx, js, storage.JetStreamConfig{Bucket: "GC"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, content := range []string{"kept: referenced", "collected"} {
		obj, err := s.Put(ctx, bytes.NewReader([]byte(content)), storage.PutOptions{Size: -1})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, obj.Key)
	}
	opts := storage.GCOptions{
		Referenced: func(k string) bool { return k == keys[0] },
		OlderThan:  time.Minute,
		Now:        func() time.Time { return time.Now().Add(time.Hour) },
		DryRun:     true,
	}
	res, err := storage.GC(ctx, s, opts)
	if err != nil || res.Deleted != 1 {
		t.Fatalf("dry run: %+v, %v; want 1 to delete", res, err)
	}
	if _, err := s.Stat(ctx, keys[1]); err != nil {
		t.Fatalf("dry run deleted %s: %v", keys[1], err)
	}
	opts.DryRun = false
	if res, err = storage.GC(ctx, s, opts); err != nil || res.Deleted != 1 || res.Referenced != 1 {
		t.Fatalf("GC: %+v, %v; want 1 deleted, 1 referenced", res, err)
	}
	if _, err := s.Stat(ctx, keys[1]); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of collected object: %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, keys[0]); err != nil {
		t.Errorf("Stat of referenced object: %v", err)
	}
}
