package retention

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// Parts of a document retention removes.
const (
	PartRecord     = "record"     // the copy, its statuses and its tracking pair
	PartStatuses   = "statuses"   // status messages; the tracking keeps what they said
	PartAttachment = "attachment" // the bytes; the digest stays in the envelope
)

// Item is one thing a plan removes, or keeps for a hold.
type Item struct {
	Part      string `json:"part"`
	Envelope  string `json:"envelope,omitempty"`
	Sender    string `json:"sender,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	// Seqs are the record messages removed (record, statuses).
	Seqs   []uint64 `json:"seqs,omitempty"`
	SHA256 string   `json:"sha256,omitempty"`
	Size   int64    `json:"size,omitempty"`
	// Since is what the rule counts from; Until when it was kept until.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// HeldBy names the holds that keep it (Plan.Held only).
	HeldBy []string `json:"held_by,omitempty"`
	refs   []ref
}

// Plan is what a run would remove now, and what holds keep.
type Plan struct {
	At     time.Time `json:"at"`
	Policy Policy    `json:"policy"`
	Remove []Item    `json:"remove"`
	Held   []Item    `json:"held"`
}

// ref is one (envelope, recipient) listing an attachment, and from when
// its bytes may go for it (zero: not yet).
type ref struct {
	id, sender, recipient string
	from                  time.Time
}

func sentAt(t *broker.Tracking) time.Time {
	for _, e := range t.History {
		if e.State == envelope.StateSent {
			return e.At
		}
	}
	return t.Created
}

// deliveredAt is when the bus recorded the recipient's answer to the
// copy: its receipt, or its refusal as invalid; zero while it has not.
// Not the time the answer claims: the recipient may date it back.
func deliveredAt(t *broker.Tracking) time.Time {
	for _, e := range t.History {
		if e.State == envelope.StateDelivered || e.State == envelope.StateInvalid {
			return t.RecordedAt(e)
		}
	}
	return time.Time{}
}

// statusSeqs are the record messages of the pair's statuses: what the
// recipient reported. A recall's event points at the recall envelope's own
// copy, another document's record: it is never removed with this one.
func statusSeqs(t *broker.Tracking, before time.Time) (seqs []uint64, last time.Time) {
	for _, list := range [][]broker.Event{t.History, t.Refused} {
		for _, e := range list {
			if e.Seq == 0 || e.Seq == t.Seq || e.State == envelope.StateSent || e.State == envelope.StateRecallRequested {
				continue
			}
			at := t.RecordedAt(e) // not the time the reporter claims
			if !before.IsZero() && at.After(before) {
				continue
			}
			if !slices.Contains(seqs, e.Seq) {
				seqs = append(seqs, e.Seq)
			}
			if at.After(last) {
				last = at
			}
		}
	}
	slices.Sort(seqs)
	return seqs, last
}

func statusMark(sender, id, recipient string) string {
	return "st." + envelope.Token(sender) + "." + id + "." + envelope.Token(recipient)
}

func attachmentMark(sum string) string { return "att." + sum }

// Plan works out what the policy removes now. Nothing is removed.
func (r *Retention) Plan(ctx context.Context) (*Plan, error) {
	pol, err := r.Policy(ctx)
	if err != nil {
		return nil, err
	}
	holds, err := r.holdSet(ctx)
	if err != nil {
		return nil, err
	}
	now := r.now().UTC()
	p := &Plan{At: now, Policy: pol, Remove: []Item{}, Held: []Item{}}
	if pol.Empty() {
		return p, nil
	}
	add := func(it Item, held []string) {
		if len(held) > 0 {
			it.HeldBy = held
			p.Held = append(p.Held, it)
		} else {
			p.Remove = append(p.Remove, it)
		}
	}
	// Attachments: per SHA-256, every pair listing it; per envelope, one
	// copy to read the manifest from.
	refs := map[string][]ref{}
	sizes := map[string]int64{}
	manifests := map[string][]envelope.Attachment{} // by sender + id
	needManifests := pol.Attachments > 0 || pol.Record > 0
	err = r.bus.EachTracking(ctx, func(t *broker.Tracking) error {
		held := holds.of(t.Envelope, t.Sender, t.Recipient)
		sent := sentAt(t)
		gone := false
		if pol.Record > 0 && !sent.IsZero() && now.Sub(sent) >= pol.Record {
			seqs, _ := statusSeqs(t, time.Time{})
			if t.Seq != 0 {
				seqs = append([]uint64{t.Seq}, seqs...)
			}
			add(Item{Part: PartRecord, Envelope: t.Envelope, Sender: t.Sender, Recipient: t.Recipient, Seqs: seqs,
				Since: sent, Until: sent.Add(pol.Record)}, held)
			gone = len(held) == 0
		} else if pol.Statuses > 0 {
			if err := r.planStatuses(ctx, p, t, now, pol.Statuses, held, add); err != nil {
				return err
			}
		}
		if !needManifests || t.Seq == 0 {
			return nil
		}
		key := t.Sender + "/" + t.Envelope
		list, ok := manifests[key]
		if !ok {
			var err error
			if list, err = r.manifest(ctx, t); err != nil {
				return err
			}
			manifests[key] = list
		}
		from := time.Time{}
		if gone {
			from = now // its record goes: nothing left to read the bytes for
		} else if d := deliveredAt(t); pol.Attachments > 0 && !d.IsZero() {
			from = d.Add(pol.Attachments)
		}
		for _, a := range list {
			refs[a.SHA256] = append(refs[a.SHA256], ref{id: t.Envelope, sender: t.Sender, recipient: t.Recipient, from: from})
			sizes[a.SHA256] = a.Size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retention plan: %w", err)
	}
	sums := make([]string, 0, len(refs))
	for sum := range refs {
		sums = append(sums, sum)
	}
	sort.Strings(sums)
	for _, sum := range sums {
		list := refs[sum]
		until := time.Time{}
		ready := true
		for _, rf := range list {
			if rf.from.IsZero() || now.Before(rf.from) {
				ready = false
				break
			}
			if rf.from.After(until) {
				until = rf.from
			}
		}
		if !ready {
			continue
		}
		if _, err := r.state.Get(ctx, attachmentMark(sum)); err == nil {
			continue // removed by an earlier run
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("retention plan: %w", err)
		}
		first := list[0]
		add(Item{Part: PartAttachment, Envelope: first.id, Sender: first.sender, Recipient: first.recipient, SHA256: sum, Size: sizes[sum],
			Since: until.Add(-pol.Attachments), Until: until, refs: list}, holdsOfRefs(holds, list))
	}
	return p, nil
}

// planStatuses adds the pair's status messages older than keep, those an
// earlier run removed left out.
func (r *Retention) planStatuses(ctx context.Context, p *Plan, t *broker.Tracking, now time.Time, keep time.Duration, held []string, add func(Item, []string)) error {
	seqs, last := statusSeqs(t, now.Add(-keep))
	if len(seqs) == 0 {
		return nil
	}
	e, err := r.state.Get(ctx, statusMark(t.Sender, t.Envelope, t.Recipient))
	switch {
	case err == nil:
		done, perr := time.Parse(time.RFC3339Nano, string(e.Value()))
		if perr == nil && !last.Add(keep).After(done) {
			return nil
		}
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return err
	}
	add(Item{Part: PartStatuses, Envelope: t.Envelope, Sender: t.Sender, Recipient: t.Recipient, Seqs: seqs,
		Since: last, Until: last.Add(keep)}, held)
	return nil
}

// manifest reads the attachments of the envelope t tracks, from its copy
// in the record, when the copy is the one the bus verified (its digest is
// the pair's). A copy gone or not matching lists nothing: retention then
// removes no bytes for it. A copy that cannot be read now fails the plan.
func (r *Retention) manifest(ctx context.Context, t *broker.Tracking) ([]envelope.Attachment, error) {
	se, err := r.bus.ReadEnvelope(ctx, t.Seq)
	if err != nil && !errors.Is(err, broker.ErrNotFound) {
		// Not "lists nothing": bytes it lists would look unneeded.
		return nil, fmt.Errorf("read the attachment list of %s (record #%d): %w", t.Envelope, t.Seq, err)
	}
	if err != nil || se.Signed == nil || se.Envelope == nil || t.Digest == "" || se.Signed.Digest() != t.Digest {
		return nil, nil
	}
	return se.Envelope.Attachments, nil
}
