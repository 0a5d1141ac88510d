package bucket_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/bucket"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/nats-io/nats.go/jetstream"
)

func jsOf(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := bustest.Start(t, bustest.WithoutFiles()).Connect(t)
	return js
}

func TestOpen(t *testing.T) {
	js := jsOf(t)
	ctx := bustest.Context(t, 30*time.Second)

	t.Run("made to the configuration when missing", func(t *testing.T) {
		kv, err := bucket.Open(ctx, js, jetstream.KeyValueConfig{Bucket: "T_NEW", History: 4, Description: "test"})
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.History() != 4 || st.Bucket() != "T_NEW" {
			t.Errorf("made %s with history %d, want T_NEW with 4", st.Bucket(), st.History())
		}
	})

	t.Run("an existing bucket keeps its settings", func(t *testing.T) {
		if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "T_OLD", History: 8}); err != nil {
			t.Fatal(err)
		}
		kv, err := bucket.Open(ctx, js, jetstream.KeyValueConfig{Bucket: "T_OLD", History: 1})
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.History() != 8 {
			t.Errorf("history %d: an operator's or an earlier version's bucket was changed, want 8", st.History())
		}
	})

	t.Run("processes starting together", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				kv, err := bucket.Open(ctx, js, jetstream.KeyValueConfig{Bucket: "T_RACE"})
				if err == nil {
					_, err = kv.Put(ctx, "k", []byte("v"))
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("a bad name is no failover", func(t *testing.T) {
		// Answered with the cause, not asked again until ctx ends.
		octx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err := bucket.Open(octx, js, jetstream.KeyValueConfig{Bucket: "bad.name"})
		if !errors.Is(err, jetstream.ErrInvalidBucketName) {
			t.Fatalf("err = %v, want %v", err, jetstream.ErrInvalidBucketName)
		}
		if octx.Err() != nil {
			t.Fatalf("a bad name was asked again until the deadline: %v", err)
		}
	})
}

// A process opening its buckets while the cluster has no meta leader (two
// of three nodes restarting) waits for one instead of failing its start.
func TestOpenThroughAnElection(t *testing.T) {
	c := bustest.StartNodes(t, 3)
	t.Cleanup(c.Stop)
	_, js := c.Connect(t)
	c.Kill(1)
	c.Kill(2)
	done := make(chan error, 1)
	go func() {
		_, err := bucket.Open(bustest.Context(t, 2*time.Minute), js, jetstream.KeyValueConfig{Bucket: "T_ELECTION", Replicas: 3})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("opened with no meta leader (err %v): the test did not reach the election", err)
	case <-time.After(time.Second):
	}
	c.Restart(1)
	c.Restart(2)
	if err := <-done; err != nil {
		t.Fatalf("open through the election: %v", err)
	}
}

// A compare-and-set conflict is told the same on a bucket with one replica
// and on a replicated one, which answer it with different codes.
func TestConflict(t *testing.T) {
	c := bustest.StartNodes(t, 3)
	t.Cleanup(c.Stop)
	_, js := c.Connect(t)
	ctx := bustest.Context(t, time.Minute)
	for _, replicas := range []int{1, 3} {
		t.Run(fmt.Sprintf("R%d", replicas), func(t *testing.T) {
			kv, err := bucket.Open(ctx, js, jetstream.KeyValueConfig{Bucket: fmt.Sprintf("T_CAS_%d", replicas), Replicas: replicas})
			if err != nil {
				t.Fatal(err)
			}
			rev, err := kv.Create(ctx, "k", []byte("1"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kv.Update(ctx, "k", []byte("2"), rev); err != nil {
				t.Fatal(err)
			}
			_, errCreate := kv.Create(ctx, "k", []byte("x"))
			_, errStale := kv.Update(ctx, "k", []byte("3"), rev)
			errDelete := kv.Delete(ctx, "k", jetstream.LastRevision(rev))
			_, errMissing := kv.Get(ctx, "nothing")
			for _, tc := range []struct {
				name string
				err  error
				want bool
			}{
				{"create of an existing key", errCreate, true},
				{"update from a stale revision", errStale, true},
				{"delete from a stale revision", errDelete, true},
				{"no such key", errMissing, false},
				{"nil", nil, false},
			} {
				if got := bucket.Conflict(tc.err); got != tc.want {
					t.Errorf("%s: Conflict(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
				}
			}
		})
	}
}
