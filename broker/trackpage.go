package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/record"
)

// trackPage is one page of the tracking bucket, in the bucket's order (the
// order in which entries were last written).
type trackPage struct {
	Entries []*Tracking
	// Sizes are the encoded sizes of Entries, for callers that bound what
	// they send on.
	Sizes []int
	// Next is the cursor to pass as after for the next page: the bucket
	// sequence of the last entry read; 0 when there is nothing more.
	Next uint64
}

// directGetRequest is the JetStream direct get request of a batch
// (nats-server JSApiMsgGetRequest).
type directGetRequest struct {
	Seq      uint64 `json:"seq,omitempty"`
	NextFor  string `json:"next_by_subj,omitempty"`
	Batch    int    `json:"batch,omitempty"`
	MaxBytes int    `json:"max_bytes,omitempty"`
}

// readTrackPage reads up to limit entries (and about maxBytes) whose keys
// match pattern (a tracking key with wildcards), starting after the bucket
// sequence after. It is one batched direct get: no consumer is made and no
// more than the page is read, whatever the number of entries. An entry
// written again while a caller pages through moves to the end, so a full
// listing may show an entry twice (the later is newer) but never misses
// one that existed throughout. The bus's own client only.
func (c *Client) readTrackPage(ctx context.Context, pattern string, after uint64, limit, maxBytes int) (*trackPage, error) {
	req, err := json.Marshal(directGetRequest{Seq: after + 1, NextFor: record.KVSubject(record.TrackBucket, pattern), Batch: limit, MaxBytes: maxBytes})
	if err != nil {
		return nil, err
	}
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("read tracking %s: %w", pattern, err)
	}
	defer sub.Unsubscribe()
	if err := c.nc.PublishRequest("$JS.API.DIRECT.GET."+record.KVStream(record.TrackBucket), inbox, req); err != nil {
		return nil, fmt.Errorf("read tracking %s: %w", pattern, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.timeout)
	defer cancel()
	page := &trackPage{}
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, fmt.Errorf("read tracking %s after #%d: %w", pattern, after, c.explain(err))
		}
		switch msg.Header.Get("Status") {
		case "":
		case "404": // nothing (more) matches
			page.Next = 0
			return page, nil
		case "204": // end of the batch
			if np, _ := strconv.ParseUint(msg.Header.Get("Nats-Num-Pending"), 10, 64); np == 0 {
				page.Next = 0
			}
			return page, nil
		default:
			return nil, fmt.Errorf("read tracking %s after #%d: %s %s", pattern, after, msg.Header.Get("Status"), msg.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("read tracking %s: answer without a sequence", pattern)
		}
		page.Next = seq
		if op := msg.Header.Get("KV-Operation"); op != "" || len(msg.Data) == 0 {
			continue // a deleted or purged entry
		}
		t, err := decodeTrackingAt(strings.TrimPrefix(msg.Header.Get("Nats-Subject"), record.KVSubject(record.TrackBucket, "")), msg.Data, seq)
		if err != nil {
			return nil, err
		}
		page.Entries = append(page.Entries, t)
		page.Sizes = append(page.Sizes, len(msg.Data))
	}
}

// Page sizes of tracking reads: entries per page, and bytes, well under
// the 1 MiB a NATS message may carry.
var (
	trackPageLimit = 100
	trackPageBytes = 512 << 10
)

// decodeTrackingAt decodes an entry of the tracking bucket read at
// revision rev.
func decodeTrackingAt(key string, data []byte, rev uint64) (*Tracking, error) {
	var t Tracking
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("decode tracking %s: %w", key, err)
	}
	t.Revision = rev
	t.Overdue = overdue(&t, time.Now())
	return &t, nil
}
