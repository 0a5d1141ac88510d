package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// handCounter is an application handler that counts how often each
// envelope reached it.
type handCounter struct {
	mu       sync.Mutex
	calls    map[string]int
	outcomes map[string][]broker.Outcome
}

func newHandCounter() *handCounter {
	return &handCounter{calls: map[string]int{}, outcomes: map[string][]broker.Outcome{}}
}

// outcome records what the mailbox did, to explain a failure.
func (h *handCounter) outcome(o broker.Outcome) {
	o.Delivery = nil
	h.mu.Lock()
	h.outcomes[o.ID] = append(h.outcomes[o.ID], o)
	h.mu.Unlock()
}

func (h *handCounter) outcomesOf(id string) []broker.Outcome {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.outcomes[id]
}

func (h *handCounter) handle(_ context.Context, d *broker.Delivery) error {
	h.mu.Lock()
	h.calls[d.Envelope.ID]++
	h.mu.Unlock()
	return nil
}

func (h *handCounter) snapshot() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(h.calls))
	for k, v := range h.calls {
		out[k] = v
	}
	return out
}

// sendUntilStored sends e as a DMS does when the bus fails under it: again
// with the same envelope (so the same id, which the stream deduplicates)
// until a send returns success or ErrDuplicate. It returns what each
// attempt returned, to explain a failure.
func sendUntilStored(ctx context.Context, c *broker.Client, e *envelope.Envelope, content []byte) (attempts []error, err error) {
	for {
		var files []broker.File
		if content != nil {
			files = []broker.File{{Name: "cv.txt", Reader: bytes.NewReader(content), Size: int64(len(content))}}
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.Send(sctx, e, files...)
		cancel()
		attempts = append(attempts, err)
		if err == nil || errors.Is(err, broker.ErrDuplicate) {
			return attempts, nil
		}
		select {
		case <-ctx.Done():
			return attempts, fmt.Errorf("envelope %s never stored: %w", e.ID, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitMailboxSettled waits until the mailbox consumer has delivered the
// last copy stored for agency and has nothing pending nor unacknowledged:
// nothing more can reach the application. The last copy counts: a
// consumer led from a replica a moment behind the record reports nothing
// pending for a copy stored an instant before. On timeout it says what is
// left and where the test's goroutines are, and the test goes on to
// report which envelopes went wrong.
func waitMailboxSettled(t *testing.T, c *broker.Client, agency string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	lastCopy, err := failover.Do(ctx, failover.Policy{}, func(ctx context.Context) (uint64, error) {
		s, err := c.JetStream().Stream(ctx, record.Stream)
		if err != nil {
			return 0, err
		}
		msg, err := s.GetLastMsgForSubject(ctx, record.MailboxFilter(agency))
		if err != nil {
			return 0, err
		}
		return msg.Sequence, nil
	})
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Fatalf("last copy stored for %s: %v", agency, err)
	}
	var last error
	for {
		cons, err := c.JetStream().Consumer(ctx, record.Stream, record.MailboxDurable(agency))
		if err == nil {
			info := cons.CachedInfo()
			if info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream >= lastCopy {
				return
			}
			err = fmt.Errorf("%d pending, %d unacknowledged (ack floor #%d, delivered #%d, last copy #%d, %d redelivered)",
				info.NumPending, info.NumAckPending, info.AckFloor.Stream, info.Delivered.Stream, lastCopy, info.NumRedelivered)
		}
		last = err
		select {
		case <-ctx.Done():
			var stacks strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
			t.Errorf("mailbox of %s not settled after %s: %v\n%s", agency, d, last, stacks.String())
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// recordSeqs maps each envelope id addressed to agency by from to its
// sequences in the record, read message by message (the next on the
// subject from a sequence on), each read asked again through a failover.
func recordSeqs(t *testing.T, c *broker.Client, to, from string) map[string][]uint64 {
	t.Helper()
	ctx := ctxT(t)
	out := map[string][]uint64{}
	subject := record.DocSubject(to, from)
	for seq := uint64(1); ; {
		msg, err := failover.Do(ctx, failover.Policy{Patience: 30 * time.Second}, func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
			s, err := c.JetStream().Stream(ctx, record.Stream)
			if err != nil {
				return nil, err
			}
			return s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			t.Logf("reading the record from #%d: %v", seq, err)
			return out
		}
		id := msg.Header.Get(record.HeaderEnvelope)
		out[id] = append(out[id], msg.Sequence)
		seq = msg.Sequence + 1
	}
}

// storedCopies counts the copies in the record addressed to agency by from.
func storedCopies(t *testing.T, c *broker.Client, to, from string) uint64 {
	t.Helper()
	ctx := ctxT(t)
	s, err := c.JetStream().Stream(ctx, record.Stream)
	if err != nil {
		t.Fatal(err)
	}
	subject := record.DocSubject(to, from)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

// Traffic runs while the node leading the record dies: every envelope a
// send reported stored reaches the application exactly once, and the
// record holds each copy once.
func TestClusterLeaderKilledLosesNothing(t *testing.T) {
	const (
		total   = 600
		senders = 8
	)
	// Envelopes whose delivery the failover swallowed come back after the
	// ack wait: shorter here than in production.
	defer func(d time.Duration) { broker.MailboxAckWait = d }(broker.MailboxAckWait)
	broker.MailboxAckWait = 5 * time.Second
	cl := bustest.StartCluster(t, 3)
	cl.AddAgency(govOffice, "Văn phòng Chính phủ")
	cl.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	sender, rcpt := cl.Client(govOffice), cl.Client(ngheAn)

	app := newHandCounter()
	mb, err := rcpt.Mailbox(ctxT(t), ngheAn, broker.OnOutcome(app.outcome))
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopConsume := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() { consumed <- mb.Consume(cctx, app.handle) }()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ids := make(chan *envelope.Envelope)
	var (
		stored, failedAttempts atomic.Int64
		attemptsMu             sync.Mutex
		attempts               = map[string][]error{}
		wg                     sync.WaitGroup
		sendErrs               = make(chan error, senders)
		killAt                 = make(chan struct{})
		once                   sync.Once
	)
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range ids {
				// Every tenth carries an attachment: the replicated
				// object store goes through the failover too.
				var content []byte
				if e.Subject[len(e.Subject)-1] == '0' {
					content = []byte("Nội dung " + e.ID)
				}
				tried, err := sendUntilStored(ctx, sender, e, content)
				failedAttempts.Add(int64(len(tried) - 1))
				attemptsMu.Lock()
				attempts[e.ID] = tried
				attemptsMu.Unlock()
				if err != nil {
					sendErrs <- err
					return
				}
				if stored.Add(1) == total/3 {
					once.Do(func() { close(killAt) })
				}
			}
		}()
	}
	sent := make(map[string]bool, total)
	afterKill := make(chan struct{})
	go func() {
		defer close(afterKill)
		<-killAt
		killed := cl.KillLeader(record.Stream)
		t.Logf("killed %s, leader of %s, after %d envelopes stored", cl.Nodes[killed].Name, record.Stream, stored.Load())
	}()
	for i := range total {
		if i == 2*total/3 {
			<-afterKill // a third of the traffic at least runs on the survivors
		}
		e := envelope.New(govOffice, []string{ngheAn}, fmt.Sprintf("Công văn số %d", i))
		sent[e.ID] = true
		select {
		case ids <- e:
		case err := <-sendErrs:
			t.Fatal(err)
		}
	}
	close(ids)
	wg.Wait()
	close(sendErrs)
	for err := range sendErrs {
		t.Fatal(err)
	}
	t.Logf("%d envelopes stored, %d send attempts failed during the failover", stored.Load(), failedAttempts.Load())

	waitMailboxSettled(t, rcpt, ngheAn, time.Minute)
	stopConsume()
	if err := <-consumed; err != nil {
		t.Fatal(err)
	}
	calls := app.snapshot()
	var seqs map[string][]uint64
	for id := range sent {
		if n := calls[id]; n != 1 {
			if seqs == nil {
				seqs = recordSeqs(t, sender, ngheAn, govOffice)
			}
			t.Errorf("envelope %s handed to the application %d times; record sequences %v; send attempts %v; outcomes %+v",
				id, n, seqs[id], attempts[id], app.outcomesOf(id))
			if tr, err := cl.Client().Tracking(ctxT(t), id, ngheAn); err == nil {
				t.Logf("envelope %s: tracked %s at record #%d, history %+v", id, tr.State, tr.Seq, tr.History)
			}
		}
	}
	for id := range calls {
		if !sent[id] {
			t.Errorf("envelope %s handed over but never sent", id)
		}
	}
	if t.Failed() {
		// Envelopes the mailbox met trouble with, handed over or not.
		for id := range sent {
			for _, o := range app.outcomesOf(id) {
				if o.Error != "" {
					t.Logf("envelope %s (handed %d times): outcomes %+v", id, calls[id], app.outcomesOf(id))
					break
				}
			}
		}
	}
	if n := storedCopies(t, sender, ngheAn, govOffice); n != total {
		t.Errorf("record holds %d copies for %s, want %d", n, ngheAn, total)
	}
}
