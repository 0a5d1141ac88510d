package failover_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/failover"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"no responders", nats.ErrNoResponders, true},
		{"no response from stream", fmt.Errorf("send x: %w", jetstream.ErrNoStreamResponse), true},
		{"leadership change", fmt.Errorf("fetch: %w", jetstream.ErrConsumerLeadershipChanged), true},
		{"timeout", nats.ErrTimeout, true},
		{"attempt deadline", context.DeadlineExceeded, true},
		{"reconnecting", nats.ErrConnectionReconnecting, true},
		{"a service unavailable for now", fmt.Errorf("the bus's system service: %w", failover.ErrUnavailable), true},
		{"cancelled", context.Canceled, false},
		{"permission violation", fmt.Errorf("%w: %w", nats.ErrPermissionViolation, nats.ErrTimeout), false},
		{"a peer offline", &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement, peer offline"}, true},
		{"cluster not available", &jetstream.APIError{Code: 503, ErrorCode: 10008}, true},
		{"not leader", &jetstream.APIError{Code: 500, ErrorCode: 10009}, true},
		{"stream offline", &jetstream.APIError{Code: 500, ErrorCode: 10118}, true},
		{"consumer offline", &jetstream.APIError{Code: 500, ErrorCode: 10119}, true},
		{"any 503", &jetstream.APIError{Code: 503, ErrorCode: 1}, true},
		{"key not found", jetstream.ErrKeyNotFound, false},
		{"bucket exists", jetstream.ErrBucketExists, false},
		{"wrong last sequence", &jetstream.APIError{Code: 400, ErrorCode: 10071}, false},
		{"publisher stalled", jetstream.ErrTooManyStalledMsgs, true},
		{"joined", errors.Join(errors.New("x"), jetstream.ErrNoStreamResponse), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := failover.Transient(tc.err); got != tc.want {
				t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestDo(t *testing.T) {
	errOther := errors.New("bad request")
	for _, tc := range []struct {
		name string
		// fails are the errors of the first attempts; past them fn
		// succeeds.
		fails     []error
		policy    failover.Policy
		deadline  time.Duration // of the caller's context (0: none)
		wantCalls int
		wantErr   error
	}{
		{name: "first time", wantCalls: 1},
		{name: "through an election", fails: []error{nats.ErrNoResponders, jetstream.ErrNoStreamResponse}, wantCalls: 3},
		{name: "not a failover", fails: []error{errOther, nil}, wantCalls: 1, wantErr: errOther},
		{name: "cancelled", fails: []error{context.Canceled}, wantCalls: 1, wantErr: context.Canceled},
		{name: "a policy's own judgement", fails: []error{errOther, errOther}, wantCalls: 3,
			policy: failover.Policy{Transient: func(err error) bool { return errors.Is(err, errOther) }}},
		{name: "the caller's deadline bounds it", fails: repeat(nats.ErrNoResponders, 1000), deadline: 300 * time.Millisecond, wantErr: nats.ErrNoResponders},
		{name: "the patience bounds it without a deadline", fails: repeat(nats.ErrNoResponders, 1000), policy: failover.Policy{Patience: 300 * time.Millisecond}, wantErr: nats.ErrNoResponders},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			calls := 0
			v, err := failover.Do(ctx, tc.policy, func(ctx context.Context) (int, error) {
				calls++
				if calls <= len(tc.fails) && tc.fails[calls-1] != nil {
					return 0, tc.fails[calls-1]
				}
				return 42, nil
			})
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && v != 42 {
				t.Errorf("value = %d, want 42", v)
			}
			if tc.wantCalls > 0 && calls != tc.wantCalls {
				t.Errorf("%d calls, want %d", calls, tc.wantCalls)
			}
			if tc.wantCalls == 0 && calls < 2 {
				t.Errorf("%d calls: a failure that passes is asked again", calls)
			}
		})
	}
}

// A caller that must warn of each retry hears of every failed attempt.
func TestDoOnRetry(t *testing.T) {
	var heard []int
	_, err := failover.Do(context.Background(), failover.Policy{OnRetry: func(attempt int, err error) { heard = append(heard, attempt) }},
		func(ctx context.Context) (int, error) {
			if len(heard) < 3 {
				return 0, nats.ErrNoResponders
			}
			return 1, nil
		})
	if err != nil || len(heard) != 3 || heard[2] != 3 {
		t.Fatalf("heard %v, err %v", heard, err)
	}
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

// An attempt lost with a dead server is given up at its own deadline, not
// the caller's: the next attempt is made while the caller still waits.
func TestDoEachAttemptHasItsDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var deadlines []time.Duration
	_, err := failover.Do(ctx, failover.Policy{Attempt: 100 * time.Millisecond}, func(ctx context.Context) (struct{}, error) {
		d, _ := ctx.Deadline()
		deadlines = append(deadlines, time.Until(d))
		if len(deadlines) < 3 {
			<-ctx.Done() // a request nobody answers
			return struct{}{}, ctx.Err()
		}
		return struct{}{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(deadlines) != 3 {
		t.Fatalf("%d attempts, want 3", len(deadlines))
	}
	for i, d := range deadlines {
		if d > 100*time.Millisecond {
			t.Errorf("attempt %d had %v, want at most the policy's 100ms", i+1, d)
		}
	}
}

func ExampleDo() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	attempts := 0
	// A request made while the stream elects a new leader.
	seq, err := failover.Do(ctx, failover.Policy{}, func(ctx context.Context) (uint64, error) {
		attempts++
		if attempts == 1 {
			return 0, nats.ErrNoResponders
		}
		return 7, nil
	})
	fmt.Println(seq, err, attempts)
	// Output: 7 <nil> 2
}
