package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// broker.Transient is failover.Transient (tested there) less the client's
// own refusals.
func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"no responders", nats.ErrNoResponders, true},
		{"no response from stream", fmt.Errorf("send x: %w", jetstream.ErrNoStreamResponse), true},
		{"permission", fmt.Errorf("%w: %w", broker.ErrPermission, nats.ErrTimeout), false},
		{"duplicate", broker.ErrDuplicate, false},
		{"tracker down", broker.ErrTrackingUnavailable, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := broker.Transient(tc.err); got != tc.want {
				t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// A DMS sends once per envelope, with a deadline, while the node leading
// the record dies: no send fails, and the recipient then fetches every
// envelope once while the new leader dies in turn, without an error.
func TestRetrySendAndFetchThroughLeaderKill(t *testing.T) {
	const (
		total   = 240
		senders = 6
	)
	// A batch in hand when the leader dies comes back after the ack wait:
	// shorter here than in production.
	defer func(d time.Duration) { broker.MailboxAckWait = d }(broker.MailboxAckWait)
	broker.MailboxAckWait = 5 * time.Second
	cl := bustest.StartCluster(t, 3)
	cl.AddAgency(govOffice, "Văn phòng Chính phủ")
	cl.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	sender, rcpt := cl.Client(govOffice), cl.Client(ngheAn)

	var (
		stored atomic.Int64
		killAt = make(chan struct{})
		once   sync.Once
		mu     sync.Mutex
		errs   []error
		sent   = map[string]bool{}
		wg     sync.WaitGroup
	)
	ids := make(chan *envelope.Envelope)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range ids {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := sender.Send(ctx, e)
				cancel()
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				if stored.Add(1) == total/3 {
					once.Do(func() { close(killAt) })
				}
			}
		}()
	}
	killed := make(chan int, 1)
	go func() {
		<-killAt
		killed <- cl.KillLeader(record.Stream)
	}()
	for i := range total {
		e := envelope.New(govOffice, []string{ngheAn}, fmt.Sprintf("Công văn số %d", i))
		sent[e.ID] = true
		ids <- e
	}
	close(ids)
	wg.Wait()
	down := <-killed
	t.Logf("killed %s during the sends", cl.Nodes[down].Name)
	for _, err := range errs {
		t.Errorf("send failed: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Back to three nodes, then the record's leader dies during the fetch.
	cl.Restart(down)
	// Every stream the receive path uses, not only the record: a bucket
	// whose restarted replica is still catching up has no quorum once
	// another node dies.
	for _, st := range []string{record.Stream, "KV_" + record.ReceivedBucket, "KV_" + record.TrackBucket,
		"KV_" + record.IDsBucket, "KV_" + record.DirectoryBucket, "KV_" + record.FileRefsBucket} {
		waitReplicasCurrent(t, sender, st)
	}
	got := map[string]int{}
	var outcomeErrs []string
	mb, err := rcpt.Mailbox(ctxT(t), ngheAn, broker.BatchSize(16), broker.OnOutcome(func(o broker.Outcome) {
		if o.Error != "" {
			outcomeErrs = append(outcomeErrs, o.ID+": "+o.Error)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	var killOnce sync.Once
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for len(got) < total && ctx.Err() == nil {
		_, err := mb.Fetch(ctx, 0, 3*time.Second, func(_ context.Context, d *broker.Delivery) error {
			got[d.Envelope.ID]++
			if len(got) == total/2 {
				killOnce.Do(func() { go cl.KillLeader(record.Stream) })
			}
			return nil
		})
		if err != nil {
			logClusterState(t, cl)
			t.Logf("recipient's connection: status %v, server %s, reconnects %d", rcpt.Conn().Status(), rcpt.Conn().ConnectedUrl(), rcpt.Conn().Stats().Reconnects)
			t.Fatalf("fetch after %d envelopes: %v; outcomes with an error: %q", len(got), err, outcomeErrs[:min(len(outcomeErrs), 3)])
		}
	}
	for id := range sent {
		if got[id] != 1 {
			t.Errorf("envelope %s handed over %d times", id, got[id])
		}
	}
	for _, e := range outcomeErrs {
		t.Logf("outcome with an error (retried): %s", e)
	}
}

// waitReplicasCurrent waits until every replica of stream is back and
// current, so that the next kill leaves a quorum.
func waitReplicasCurrent(t *testing.T, c *broker.Client, stream string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		s, err := c.JetStream().Stream(ctx, stream)
		if err == nil {
			if cl := s.CachedInfo().Cluster; cl != nil && cl.Leader != "" && len(cl.Replicas) == 2 &&
				cl.Replicas[0].Current && !cl.Replicas[0].Offline && cl.Replicas[1].Current && !cl.Replicas[1].Offline {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("replicas of %s not current: %v", stream, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// logClusterState says, for a failed run, where each stream the receive
// path uses has its leader and how its replicas stand.
func logClusterState(t *testing.T, cl *bustest.Cluster) {
	t.Helper()
	nc, err := nats.Connect(cl.URLs())
	if err != nil {
		t.Logf("cluster state: %v", err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	for _, st := range []string{record.Stream, "KV_" + record.ReceivedBucket, "KV_" + record.TrackBucket, "KV_" + record.IDsBucket} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := js.Stream(ctx, st)
		cancel()
		if err != nil {
			t.Logf("%s: %v", st, err)
			continue
		}
		b, _ := json.Marshal(s.CachedInfo().Cluster)
		t.Logf("%s: last seq %d, cluster %s", st, s.CachedInfo().State.LastSeq, b)
	}
	for i, nd := range cl.Nodes {
		t.Logf("node %d %s running %v", i, nd.Name, nd.Server != nil)
	}
}
