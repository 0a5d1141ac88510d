package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// HoldBucket is the KV bucket of legal holds, of its own so that its
// access and history are set apart from everything retention removes.
const HoldBucket = "AXIS_HOLDS"

// Hold scopes.
const (
	ScopeAgency   = "agency"   // every document the agency sent or received
	ScopeDocument = "document" // one envelope id, every recipient
)

// Hold is a legal hold: what it names is never removed while it stands.
type Hold struct {
	Scope  string    `json:"scope"`
	Target string    `json:"target"` // agency code or envelope id
	Reason string    `json:"reason"`
	By     string    `json:"by,omitempty"`
	Placed time.Time `json:"placed"`
}

func (h Hold) String() string { return h.Scope + " " + h.Target }

func holdKey(scope, target string) (string, error) {
	switch scope {
	case ScopeAgency:
		if err := envelope.CheckNonStandardCode(target); err != nil {
			return "", fmt.Errorf("%w: agency %q: %w", ErrHold, target, err)
		}
		return "agency." + envelope.Token(target), nil
	case ScopeDocument:
		if !envelope.IsID(target) {
			return "", fmt.Errorf("%w: document %q: want an envelope id (a UUID)", ErrHold, target)
		}
		return "doc." + target, nil
	}
	return "", fmt.Errorf("%w: scope %q: want agency or document", ErrHold, scope)
}

// maxReason bounds a hold's reason, in bytes.
const maxReason = 1024

// Place puts a hold. The reason (a case number, an order) is required.
func (r *Retention) Place(ctx context.Context, h Hold) error {
	key, err := holdKey(h.Scope, h.Target)
	if err != nil {
		return err
	}
	h.Reason = strings.TrimSpace(h.Reason)
	if h.Reason == "" || len(h.Reason) > maxReason || !utf8.ValidString(h.Reason) {
		return fmt.Errorf("%w: %s: a reason of 1 to %d bytes of text is required (the order or case it is for)", ErrHold, h, maxReason)
	}
	h.Placed = r.now().UTC()
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if _, err := r.holds.Put(ctx, key, b); err != nil {
		return fmt.Errorf("place hold on %s: %w", h, err)
	}
	return nil
}

// Release lifts a hold.
func (r *Retention) Release(ctx context.Context, scope, target string) error {
	key, err := holdKey(scope, target)
	if err != nil {
		return err
	}
	if _, err := r.holds.Get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w on %s %s", ErrNoHold, scope, target)
	}
	if err := r.holds.Delete(ctx, key); err != nil {
		return fmt.Errorf("release hold on %s %s: %w", scope, target, err)
	}
	return nil
}

// Holds lists the holds in force.
func (r *Retention) Holds(ctx context.Context) ([]Hold, error) {
	w, err := r.holds.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read legal holds: %w", err)
	}
	defer func() { _ = w.Stop() }()
	out := []Hold{}
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
				return out, nil
			}
			var h Hold
			if err := json.Unmarshal(e.Value(), &h); err != nil {
				// An entry that does not decode still holds: never read
				// a damaged hold as no hold.
				return nil, fmt.Errorf("read legal hold %s: %w", e.Key(), err)
			}
			out = append(out, h)
		case <-ctx.Done():
			return nil, fmt.Errorf("read legal holds: %w", ctx.Err())
		}
	}
}

// holdSet answers which holds keep a document.
type holdSet struct {
	agencies map[string]Hold
	docs     map[string]Hold
}

func (r *Retention) holdSet(ctx context.Context) (*holdSet, error) {
	list, err := r.Holds(ctx)
	if err != nil {
		return nil, err
	}
	s := &holdSet{agencies: map[string]Hold{}, docs: map[string]Hold{}}
	for _, h := range list {
		if h.Scope == ScopeAgency {
			s.agencies[h.Target] = h
		} else {
			s.docs[h.Target] = h
		}
	}
	return s, nil
}

// of returns the holds that keep envelope id between sender and recipient.
func (s *holdSet) of(id, sender, recipient string) []string {
	var out []string
	if h, ok := s.docs[id]; ok {
		out = append(out, h.String()+": "+h.Reason)
	}
	for _, a := range []string{sender, recipient} {
		if h, ok := s.agencies[a]; ok {
			out = append(out, h.String()+": "+h.Reason)
		}
	}
	return out
}
