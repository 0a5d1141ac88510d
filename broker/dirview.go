package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The directory as an agency's client reads it. An agency's credentials
// read the directory bucket by key (DIRECT.GET) and may neither follow it
// (a consumer) nor ask for its stream's info; and a national directory of
// 111,000 agencies must not be loaded whole by every client. So the client
// reads what it needs when it needs it and keeps it for a short while:
//
//   - an agency's entry (certificate, bus) when first needed, read again
//     once older than the refresh period. LookupAgency, hence Send, asks
//     the bus whenever a code is not cached: an agency registered a moment
//     ago is reachable at once; a code found missing answers "unknown"
//     elsewhere for at most missingTTL.
//   - the bus-wide keys (limits, bus id, roots, federation roots, CRLs):
//     the last value of each, in one request, every refresh period; only
//     keys changed since the previous read travel.
//   - before the mailbox verifies an envelope, the bus-wide keys again
//     unless they were read after the bus recorded that envelope: a
//     revocation published before a copy was recorded is always applied to
//     it, whatever the refresh period (clocks assumed within clockMargin).
//
// A change to an entry, the limits or the roots is thus seen within one
// refresh period (DefaultDirectoryRefresh unless WithDirectoryRefresh).

// DefaultDirectoryRefresh is how long an agency's client keeps what it
// read from the directory before reading it again.
const DefaultDirectoryRefresh = 30 * time.Second

const (
	// missingTTL: how long "no such agency" is remembered.
	missingTTL = 5 * time.Second
	// maxCachedAgencies bounds the entries an agency's client keeps.
	maxCachedAgencies = 4096
	// clockMargin: how far the client's clock may run ahead of the bus's
	// before a revocation read "after" a copy was recorded may in truth be
	// older than the copy.
	clockMargin = 2 * time.Second
)

// busWideKeys are read together, by last value per key; at most 1024 keys
// may match (the server's limit on one such request).
var busWideKeys = []string{limitsKey, BusKey, "root.>", FedRootPrefix + ">", "crl.>"}

// agencyView is the part of a directory that reads by key.
type agencyView struct {
	d       *directory
	kv      *directKV
	refresh time.Duration
	// Under d.mu: when each cached entry was read, when a code was found
	// missing.
	fetched map[string]time.Time
	missing map[string]time.Time

	mu     sync.Mutex
	readAt time.Time // start of the last complete read of the bus-wide keys
	flight *readFlight
	seq    uint64 // bus-wide keys up to this stream sequence are applied (used by one read at a time)
}

// readFlight is one read of the bus-wide keys, shared by its waiters.
type readFlight struct {
	start time.Time
	done  chan struct{}
	err   error
}

func openAgencyDirectory(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, trust *signing.Trust, useRoots bool,
	log *slog.Logger, timeout, refresh time.Duration, writer keyStore) (*directory, error) {
	if refresh <= 0 {
		refresh = DefaultDirectoryRefresh
	}
	d := &directory{trust: trust, useRoots: useRoots, log: log, agencies: map[string]Agency{}, limits: DefaultLimits, done: make(chan struct{})}
	kv := &directKV{nc: nc, js: js, bucket: record.DirectoryBucket, timeout: timeout,
		readOnly: fmt.Errorf("%w: the directory is written by the bus; an agency's credentials only read it", ErrPermission)}
	d.kv, d.direct = kv, kv
	if writer != nil {
		// The bus's own credentials (WithDirectoryByKey): they write too.
		d.kv = writer
	}
	trust.SetBindings(d.bindings)
	v := &agencyView{d: d, kv: kv, refresh: refresh, fetched: map[string]time.Time{}, missing: map[string]time.Time{}}
	d.view = v
	// A bus that has just started accepts connections a moment before its
	// buckets exist.
	for wait := time.Now().Add(5 * time.Second); ; {
		err := v.freshAfter(ctx, time.Now())
		if err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrBucketNotFound) || time.Now().After(wait) {
			return nil, fmt.Errorf("read directory %s (is 'docaxis serve' running on this bus?): %w", record.DirectoryBucket, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read directory: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	wctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go v.follow(wctx)
	return d, nil
}

// follow re-reads the bus-wide keys every refresh period.
func (v *agencyView) follow(ctx context.Context) {
	defer close(v.d.done)
	t := time.NewTicker(v.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := v.freshAfter(ctx, time.Now()); err != nil && ctx.Err() == nil {
				v.d.log.Debug("directory: bus-wide keys not read", "err", err)
			}
		}
	}
}

// freshAfter returns once the bus-wide keys were read by a read that
// started at or after t, reading them if needed. Concurrent callers share
// one read.
func (v *agencyView) freshAfter(ctx context.Context, t time.Time) error {
	for {
		v.mu.Lock()
		if !v.readAt.Before(t) {
			v.mu.Unlock()
			return nil
		}
		f := v.flight
		if f == nil {
			f = &readFlight{start: time.Now(), done: make(chan struct{})}
			v.flight = f
			v.mu.Unlock()
			// Not the caller's context: others wait on this read too.
			rctx, cancel := context.WithTimeout(context.Background(), v.kv.timeout)
			f.err = v.readBusWide(rctx)
			cancel()
			v.mu.Lock()
			if f.err == nil && f.start.After(v.readAt) {
				v.readAt = f.start
			}
			v.flight = nil
			v.mu.Unlock()
			close(f.done)
			if f.err != nil {
				return f.err
			}
			continue
		}
		v.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if f.err != nil && !f.start.Before(t) {
			return f.err
		}
	}
}

// readBusWide applies the bus-wide keys changed since the last read.
func (v *agencyView) readBusWide(ctx context.Context) error {
	filters := make([]string, len(busWideKeys))
	for i, k := range busWideKeys {
		filters[i] = v.kv.subject(k)
	}
	var got []*kvEntry
	end, err := v.kv.batch(ctx, directRequest{Seq: v.seq + 1, MultiLast: filters}, func(e *kvEntry) { got = append(got, e) })
	if err != nil {
		return err
	}
	// Roots before the CRLs they sign.
	sort.SliceStable(got, func(i, j int) bool { return isRootKey(got[i].key) && !isRootKey(got[j].key) })
	newRoot := false
	for _, e := range got {
		v.d.apply(e, v.d.log)
		newRoot = newRoot || isRootKey(e.key)
	}
	if newRoot && v.seq > 0 {
		// A CRL read earlier may be signed by a root that only came now.
		if _, err := v.kv.batch(ctx, directRequest{MultiLast: []string{v.kv.subject("crl.>")}}, func(e *kvEntry) { v.d.apply(e, v.d.log) }); err != nil {
			return err
		}
	}
	if end.upTo > v.seq {
		v.seq = end.upTo
	}
	return nil
}

func isRootKey(key string) bool {
	return strings.HasPrefix(key, "root.") || strings.HasPrefix(key, FedRootPrefix)
}

// entry returns code's directory entry, reading it from the bus when the
// cached one is older than the refresh period, or when none is cached and
// either ask is set or the code was not found missing lately. A stale
// entry is returned when the bus cannot be read.
func (v *agencyView) entry(ctx context.Context, code string, ask bool) (Agency, bool, error) {
	if !envelope.IsStandardCode(code) && envelope.CheckNonStandardCode(code) != nil {
		return Agency{}, false, nil // never a key: no question to ask
	}
	d := v.d
	now := time.Now()
	d.mu.RLock()
	a, ok := d.agencies[code]
	readAt := v.fetched[code]
	missAt, missing := v.missing[code]
	d.mu.RUnlock()
	switch {
	case ok && now.Sub(readAt) < v.refresh:
		return a, true, nil
	case !ok && !ask && missing && now.Sub(missAt) < missingTTL:
		return Agency{}, false, nil
	}
	e, err := v.kv.Get(ctx, record.DirectoryKey(code))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		d.mu.Lock()
		delete(d.agencies, code)
		delete(v.fetched, code)
		v.missing[code] = now
		trim(v.missing, maxCachedAgencies)
		d.mu.Unlock()
		return Agency{}, false, nil
	}
	if err != nil {
		if ok {
			d.log.Warn("directory: entry not read again, using the cached one", "agency", code, "err", err)
			return a, true, nil
		}
		return Agency{}, false, fmt.Errorf("look up agency %s: %w", code, err)
	}
	d.apply(e, d.log)
	d.mu.Lock()
	defer d.mu.Unlock()
	a, ok = d.agencies[code]
	if !ok {
		return Agency{}, false, nil // an entry that does not parse or names another code
	}
	v.fetched[code] = now
	delete(v.missing, code)
	for c := range d.agencies {
		if len(d.agencies) <= maxCachedAgencies {
			break
		}
		if c != code {
			delete(d.agencies, c)
			delete(v.fetched, c)
		}
	}
	return a, true, nil
}

// trim drops entries of m (any) until it holds at most n.
func trim(m map[string]time.Time, n int) {
	for k := range m {
		if len(m) <= n {
			return
		}
		delete(m, k)
	}
}

// list reads every agency entry, page by page, without keeping them: only
// an explicit listing pays for the whole directory.
func (v *agencyView) list(ctx context.Context) ([]Agency, error) {
	latest := map[string]*kvEntry{}
	filter := v.kv.subject(record.DirectoryAgencyFilter)
	for seq := uint64(0); ; {
		n := 0
		end, err := v.kv.batch(ctx, directRequest{Seq: seq, NextFor: filter, Batch: 256}, func(e *kvEntry) {
			n++
			latest[e.key] = e // in sequence order: the last one wins
			seq = e.rev + 1
		})
		if err != nil {
			return nil, fmt.Errorf("list the directory: %w", err)
		}
		if end.empty || n == 0 || end.pending == 0 {
			break
		}
	}
	out := make([]Agency, 0, len(latest))
	for _, e := range latest {
		if e.op != jetstream.KeyValuePut {
			continue
		}
		var a Agency
		err := json.Unmarshal(e.value, &a)
		if err != nil || record.DirectoryKey(a.Code) != e.key {
			v.d.log.Warn("directory: bad agency entry", "key", e.key, "err", err)
			continue
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out, nil
}

// settle readies the directory for verifying an envelope from `from` that
// the bus recorded at `recorded`: the sender's entry is read (it binds a
// certificate that carries no agency code), and the revocations are read
// again unless that was done after the copy was recorded. For the bus's
// own client, which follows the directory, there is nothing to do.
func (d *directory) settle(ctx context.Context, from string, recorded, inHand time.Time) error {
	v := d.view
	if v == nil {
		return nil
	}
	// The entry holds the sender's system bindings: one read before the
	// copy was recorded may miss the binding a move made.
	d.mu.RLock()
	readAt, cached := v.fetched[from], d.agencies[from]
	d.mu.RUnlock()
	if (cached.System != "" || len(cached.Bindings) > 0) && readAt.Before(recorded.Add(clockMargin)) {
		d.mu.Lock()
		delete(v.fetched, from)
		d.mu.Unlock()
	}
	if _, _, err := v.entry(ctx, from, false); err != nil {
		return err
	}
	// A read that starts once the copy is in hand is after its recording
	// in any case.
	if inHand.IsZero() {
		inHand = time.Now()
	}
	after := recorded.Add(clockMargin)
	if after.After(inHand) {
		after = inHand
	}
	if err := v.freshAfter(ctx, after); err != nil {
		return fmt.Errorf("read the directory's revocations: %w", err)
	}
	return nil
}

// refresh reads code's entry from the bus again, so that a change made a
// moment ago (a binding to a system) counts before the client's copy of
// it would, and reports whether it read a newer one: an agency's client
// drops its cached entry and reads it by key; the bus's own, which follows
// the directory, applies the entry read from the bucket as its watch will.
func (d *directory) refresh(ctx context.Context, code string) bool {
	if v := d.view; v != nil {
		d.mu.Lock()
		delete(v.fetched, code)
		d.mu.Unlock()
		_, _, err := v.entry(ctx, code, true)
		return err == nil
	}
	e, err := d.kv.Get(ctx, record.DirectoryKey(code))
	if err != nil {
		return false
	}
	if a, ok := d.lookup(code); ok && a.Version >= e.Revision() {
		return false // nothing newer than the copy in hand
	}
	d.apply(e, d.log)
	return true
}
