package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go/jetstream"
)

// The directory's version is the sequence of its bucket's stream: every
// change (an agency added, updated, moved, suspended or deleted; a system
// added or removed) takes the next one, and an entry's Version is the
// sequence of its last change. A DMS that keeps a copy asks for the
// changes since the version it holds, deletions included (a deleted agency
// stays as an entry in state deleted), without re-reading the directory.

// DirectoryChanges is what changed after a version.
type DirectoryChanges struct {
	// Since is the version asked about; Version the one this answer
	// brings the copy to (ask from it next time).
	Since    uint64   `json:"since"`
	Version  uint64   `json:"version"`
	Agencies []Agency `json:"agencies"`
	Systems  []System `json:"systems,omitempty"`
}

// DirectoryChanges returns every agency and system whose entry changed
// after version since (0: the whole directory), each in its latest form.
func (c *Client) DirectoryChanges(ctx context.Context, since uint64) (*DirectoryChanges, error) {
	out := &DirectoryChanges{Since: since, Version: since, Agencies: []Agency{}}
	agencies := map[string]Agency{}
	systems := map[string]System{}
	err := c.dir.scan(ctx, ">", since, func(key string, rev uint64, value []byte) {
		out.Version = max(out.Version, rev)
		_, isAgency := record.DirectoryAgencyOf(key)
		switch {
		case isAgency:
			var a Agency
			if json.Unmarshal(value, &a) == nil && record.DirectoryKey(a.Code) == key {
				a.Version = rev
				agencies[a.Code] = a
			}
		case record.IsDirectorySystemKey(key):
			var s System
			if json.Unmarshal(value, &s) == nil && systemKey(s.ID) == key {
				s.Version = rev
				systems[s.ID] = s
			}
		}
	})
	if err != nil {
		return nil, err
	}
	for _, a := range agencies {
		out.Agencies = append(out.Agencies, a)
	}
	for _, s := range systems {
		out.Systems = append(out.Systems, s)
	}
	sort.Slice(out.Agencies, func(i, j int) bool { return out.Agencies[i].Code < out.Agencies[j].Code })
	sort.Slice(out.Systems, func(i, j int) bool { return out.Systems[i].ID < out.Systems[j].ID })
	return out, nil
}

// Children returns the agencies whose parent is code ("" : the top of the
// hierarchy), sorted by code.
func (c *Client) Children(ctx context.Context, code string) ([]Agency, error) {
	all, err := c.DirectoryChanges(ctx, 0)
	if err != nil {
		return nil, err
	}
	var out []Agency
	for _, a := range all.Agencies {
		if a.Parent == code {
			out = append(out, a)
		}
	}
	return out, nil
}

// scan calls fn for the latest value of every key matching pattern (a
// subject pattern below the bucket: "agency.*", ">") whose last change came
// after version since, in key order of first appearance. Deleted keys are
// skipped: the directory never deletes an agency, it marks it deleted.
func (d *directory) scan(ctx context.Context, pattern string, since uint64, fn func(key string, rev uint64, value []byte)) error {
	k := d.direct
	latest := map[string]*kvEntry{}
	var order []string
	filter := k.subject(pattern)
	for seq := since + 1; ; {
		n := 0
		end, err := k.batch(ctx, directRequest{Seq: seq, NextFor: filter, Batch: 1024}, func(e *kvEntry) {
			n++
			if _, ok := latest[e.key]; !ok {
				order = append(order, e.key)
			}
			latest[e.key] = e // in sequence order: the last one wins
			seq = e.rev + 1
		})
		if err != nil {
			return fmt.Errorf("read the directory since version %d: %w", since, err)
		}
		if end.empty || n == 0 || end.pending == 0 {
			break
		}
	}
	for _, key := range order {
		e := latest[key]
		if e.op == jetstream.KeyValuePut {
			fn(e.key, e.rev, e.value)
		}
	}
	return nil
}
