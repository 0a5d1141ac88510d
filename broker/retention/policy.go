package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Policy is how long each part is kept; zero keeps it for ever.
type Policy struct {
	// Record: a document's copy, its statuses and its tracking, counted
	// from when the bus recorded the copy.
	Record time.Duration `json:"record,omitempty"`
	// Statuses: the status messages of a document, counted from each
	// status; the tracking keeps what they said.
	Statuses time.Duration `json:"statuses,omitempty"`
	// Attachments: the bytes of attachments, counted from delivery (the
	// recipient's receipt, or its refusal) to the last recipient of every
	// document listing them. Digests stay in the envelopes.
	Attachments time.Duration `json:"attachments,omitempty"`
	// Set and By say who set the policy, when.
	Set time.Time `json:"set,omitzero"`
	By  string    `json:"by,omitempty"`
}

// Empty reports whether the policy removes nothing.
func (p Policy) Empty() bool { return p.Record <= 0 && p.Statuses <= 0 && p.Attachments <= 0 }

func (p Policy) check() error {
	if p.Record < 0 || p.Statuses < 0 || p.Attachments < 0 {
		return fmt.Errorf("%w: record %s, statuses %s, attachments %s: want durations of zero (keep) or more", ErrPolicy, p.Record, p.Statuses, p.Attachments)
	}
	if p.Record > 0 && p.Statuses > p.Record {
		return fmt.Errorf("%w: statuses kept %s, longer than the record (%s) they are part of", ErrPolicy, p.Statuses, p.Record)
	}
	const minimum = 24 * time.Hour
	for name, d := range map[string]time.Duration{"record": p.Record, "statuses": p.Statuses, "attachments": p.Attachments} {
		if d > 0 && d < minimum {
			return fmt.Errorf("%w: %s kept %s: at least a day (a slip of the unit would empty the bus)", ErrPolicy, name, d)
		}
	}
	return nil
}

const policyKey = "policy"

// Policy reads the policy in force (the zero Policy when none was set).
func (r *Retention) Policy(ctx context.Context) (Policy, error) {
	e, err := r.state.Get(ctx, policyKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Policy{}, nil
	}
	if err != nil {
		return Policy{}, fmt.Errorf("read retention policy: %w", err)
	}
	var p Policy
	if err := json.Unmarshal(e.Value(), &p); err != nil {
		return Policy{}, fmt.Errorf("read retention policy: %w", err)
	}
	return p, nil
}

// SetPolicy stores p as the policy in force.
func (r *Retention) SetPolicy(ctx context.Context, p Policy, by string) error {
	if err := p.check(); err != nil {
		return err
	}
	p.Set, p.By = r.now().UTC(), by
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if _, err := r.state.Put(ctx, policyKey, b); err != nil {
		return fmt.Errorf("store retention policy: %w", err)
	}
	return nil
}
