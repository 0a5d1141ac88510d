package vxp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bucket"
	"github.com/docaxis/docaxis/broker/failover"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

// What waits for a system. A VXP system does not hold a consumer open: it
// asks now and then (getReceivedEdocList), fetches (getEdoc) and says done
// (updateStatus). Between those calls the bus keeps, per system, an index
// of the documents and statuses waiting for its agencies, in a KV bucket:
// fed from the system's mailbox consumer (sys_<id>, and xfer_<id> for the
// mail of agencies that came from elsewhere) and a status consumer of its
// own (vxps_<id>), each message indexed once and then acknowledged on
// that consumer. Acknowledging to the sender (the signed delivered
// receipt) waits for updateStatus done, through broker.Client.Acknowledge:
// the one receive path. A listing reads the system's keys only: its cost
// is what waits, not how many agencies the system serves.

// Bucket holds the index.
const Bucket = "AXIS_VXP"

// Message types, as the SDK names them.
const (
	TypeEdoc   = "edoc"
	TypeStatus = "status"
)

// entry is one document or status waiting for one of a system's agencies.
type entry struct {
	Type string `json:"type"` // edoc or status
	ID   string `json:"id"`   // the envelope, or the status envelope
	Seq  uint64 `json:"seq"`  // its copy in the record
	// To is the agency of the system it waits for, From who sent it.
	To   string `json:"to"`
	From string `json:"from"`
	// Of and Code: a status's document and edXML status code.
	Of     string    `json:"of,omitempty"`
	Code   string    `json:"code,omitempty"`
	Stored time.Time `json:"stored"`
	// Status is the last updateStatus other than done (fail, processing
	// ...); Fails counts the fail ones.
	Status  string    `json:"status,omitempty"`
	Fails   int       `json:"fails,omitempty"`
	Updated time.Time `json:"updated,omitzero"`

	key string
	rev uint64 // the revision read: a change is written only over it
}

// sentRecord remembers a document a system sent through sendEdoc, for
// getSentEdocList without a docId.
type sentRecord struct {
	ID   string    `json:"id"`
	From string    `json:"from"`
	At   time.Time `json:"at"`
}

type index struct {
	c   *broker.Client
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	log *slog.Logger

	mu    sync.Mutex
	locks map[string]*sync.Mutex // per system: one drain at a time
}

func openIndex(ctx context.Context, c *broker.Client, log *slog.Logger) (*index, error) {
	js := c.JetStream()
	// A new index has the replicas of the record: read through a failover,
	// not guessed (one replica on a cluster) when the read fails.
	st, err := failover.Do(ctx, failover.Policy{}, func(ctx context.Context) (jetstream.Stream, error) {
		return js.Stream(ctx, record.Stream)
	})
	if err != nil {
		return nil, fmt.Errorf("VXP index: replicas of %s: %w", record.Stream, err)
	}
	replicas := st.CachedInfo().Config.Replicas
	kv, err := bucket.Open(ctx, js, jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "docaxis VXP API: documents and statuses waiting for each document system, documents each sent",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("VXP index: %w", err)
	}
	return &index{c: c, js: js, kv: kv, log: log, locks: map[string]*sync.Mutex{}}, nil
}

func waitPrefix(sys string) string { return "in." + envelope.Token(sys) + "." }

func waitKey(sys, typ, id, to string) string {
	return waitPrefix(sys) + typ + "." + id + "." + envelope.Token(to)
}

func sentKey(sys, id string) string { return "out." + envelope.Token(sys) + "." + id }

// StatusDurable is the consumer through which the index learns of the
// statuses and receipts for a system's agencies.
func StatusDurable(sys string) string { return "vxps_" + envelope.Token(sys) }

func (x *index) lock(sys string) func() {
	x.mu.Lock()
	l, ok := x.locks[sys]
	if !ok {
		l = &sync.Mutex{}
		x.locks[sys] = l
	}
	x.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// drain indexes what the system's consumers hold now.
func (x *index) drain(ctx context.Context, sys string) error {
	defer x.lock(sys)()
	cons, err := x.js.Consumer(ctx, record.Stream, record.SystemDurable(sys))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil // no mailbox: nothing can wait
	}
	if err != nil {
		return fmt.Errorf("mailbox of system %s: %w", sys, err)
	}
	if err := x.fetch(ctx, sys, cons, x.indexDoc); err != nil {
		return err
	}
	if xfer, err := x.js.Consumer(ctx, record.Stream, record.TransferDurable(sys)); err == nil {
		if err := x.fetch(ctx, sys, xfer, x.indexDoc); err != nil {
			return err
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("transfer mailbox of system %s: %w", sys, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("mailbox of system %s: %w", sys, err)
	}
	st, err := x.statusConsumer(ctx, sys, record.MailboxAgencies(info.Config))
	if err != nil || st == nil {
		return err
	}
	return x.fetch(ctx, sys, st, x.indexStatus)
}

// serves tells whether system sys serves agency code now. An agency that
// moved to another system has its mail read there (by its transfer
// consumer), not by its old system, as in broker.Mailbox's
// processForSystem; an unknown one is no system's. A directory that
// cannot be read now is an error (failover.ErrUnavailable), no answer. A
// deleted agency's mail stays its system's to take, as
// broker.Client.Identity has it.
func (x *index) serves(ctx context.Context, sys, code string) (bool, error) {
	a, err := x.c.LookupAgency(ctx, code)
	switch err := broker.DirectoryRead(err, broker.ErrUnknownAgency); {
	case errors.Is(err, broker.ErrUnknownAgency):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("system %s, agency %s: %w", sys, code, err)
	}
	return a.System == sys, nil
}

// serving keeps the entries of list whose agency the system still serves
// and takes the others off its list: they wait for the agency's new system
// now, which lists them from its transfer consumer.
func (x *index) serving(ctx context.Context, sys string, list []entry) ([]entry, error) {
	served := map[string]bool{}
	out := list[:0]
	for _, e := range list {
		ok, known := served[e.To]
		if !known {
			var err error
			if ok, err = x.serves(ctx, sys, e.To); err != nil {
				return nil, err
			}
			served[e.To] = ok
		}
		if ok {
			out = append(out, e)
			continue
		}
		if err := x.remove(ctx, e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// statusConsumer keeps the system's status consumer filtering the
// statuses to the agencies it serves now.
func (x *index) statusConsumer(ctx context.Context, sys string, served []string) (jetstream.Consumer, error) {
	if len(served) == 0 {
		return nil, nil
	}
	filters := make([]string, 0, len(served))
	for _, a := range served {
		filters = append(filters, record.StatusFilter(a))
	}
	slices.Sort(filters)
	name := StatusDurable(sys)
	cons, err := x.js.Consumer(ctx, record.Stream, name)
	if err == nil {
		cfg := cons.CachedInfo().Config
		have := append([]string{}, cfg.FilterSubjects...)
		if cfg.FilterSubject != "" {
			have = append(have, cfg.FilterSubject)
		}
		slices.Sort(have)
		if slices.Equal(have, filters) {
			return cons, nil
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("status consumer of system %s: %w", sys, err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "statuses for the agencies of system " + sys + " (VXP API)",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 10000,
	}
	if len(filters) == 1 {
		cfg.FilterSubject = filters[0]
	} else {
		cfg.FilterSubjects = filters
	}
	cons, err = x.js.CreateOrUpdateConsumer(ctx, record.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("status consumer of system %s (%d agencies): %w", sys, len(filters), err)
	}
	return cons, nil
}

// fetch hands every message cons holds now to index, acknowledging each
// on the consumer once indexed. One that index fails on (the directory or
// a marker not read now, a refusal not made) is asked for again later, as
// the mailbox does (a nak with a delay), and the others go on: one message
// failing again and again holds no other back. A message that comes back
// within the same drain is left for the next.
func (x *index) fetch(ctx context.Context, sys string, cons jetstream.Consumer, index func(context.Context, string, jetstream.Msg) error) error {
	failed := map[uint64]bool{}
	for {
		batch, err := cons.FetchNoWait(128)
		if err != nil {
			return fmt.Errorf("read the consumer of system %s: %w", sys, err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			var seq uint64
			if meta, err := msg.Metadata(); err == nil {
				seq = meta.Sequence.Stream
			}
			if failed[seq] {
				_ = msg.NakWithDelay(time.Second)
				continue
			}
			if err := index(ctx, sys, msg); err != nil {
				failed[seq] = true
				_ = msg.NakWithDelay(time.Second)
				x.log.Warn("vxp: message not indexed now, asked for again later", "system", sys, "subject", msg.Subject(), "seq", seq, "err", err)
				continue
			}
			if err := msg.DoubleAck(ctx); err != nil {
				return fmt.Errorf("acknowledge on the consumer of system %s: %w", sys, err)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("read the consumer of system %s: %w", sys, err)
		}
		if n == 0 {
			return nil
		}
	}
}

// indexDoc indexes a document copy for one of the system's agencies. A
// copy that does not verify goes through the receive path at once, which
// refuses it (invalid receipt to the sender, quarantine): it is never
// listed.
func (x *index) indexDoc(ctx context.Context, sys string, msg jetstream.Msg) error {
	meta, err := msg.Metadata()
	if err != nil {
		return err
	}
	subj, ok := record.ParseSubject(msg.Subject())
	if !ok || subj.Kind != record.KindDoc {
		return nil
	}
	to := subj.To
	// Not served here (any more): its new system's transfer consumer
	// reads it. Only the directory's answer drops it: a directory not
	// read now is asked again later.
	if served, err := x.serves(ctx, sys, to); err != nil || !served {
		return err
	}
	se, err := x.c.ReadEnvelope(ctx, meta.Sequence.Stream)
	if err != nil {
		return err
	}
	if se.Envelope == nil || !envelope.IsID(se.Envelope.ID) {
		x.log.Warn("vxp: unreadable copy left in the record", "system", sys, "seq", meta.Sequence.Stream, "err", se.Err)
		return nil
	}
	if se.Err != nil {
		// Refused (the error wraps ErrUnverified), or found and taken as
		// another copy of the id; any other failure left the sender
		// unanswered: refused again later.
		_, err := x.c.Acknowledge(ctx, to, se.Envelope.ID)
		if err != nil && !errors.Is(err, broker.ErrUnverified) {
			return fmt.Errorf("refuse copy #%d for %s: %w", se.Seq, to, err)
		}
		x.log.Warn("vxp: copy refused", "system", sys, "agency", to, "envelope", se.Envelope.ID, "err", err)
		return nil
	}
	// Handed over already (done here before its entry went, or by the
	// agency's earlier system or mailbox when it moved here and the
	// transfer consumer reads its mail again): not listed again, as the
	// mailbox skips it (broker.Mailbox's process).
	if handed, err := x.c.HandedOver(ctx, to, se.Envelope.ID); err != nil || handed {
		return err
	}
	e := entry{Type: TypeEdoc, ID: se.Envelope.ID, Seq: se.Seq, To: to, From: se.Envelope.From, Stored: se.Stored.UTC()}
	return x.create(ctx, waitKey(sys, e.Type, e.ID, e.To), e)
}

// indexStatus indexes a status or receipt for one of the system's
// agencies; only a verified one with an edXML status code is listed.
func (x *index) indexStatus(ctx context.Context, sys string, msg jetstream.Msg) error {
	meta, err := msg.Metadata()
	if err != nil {
		return err
	}
	subj, ok := record.ParseSubject(msg.Subject())
	if !ok || subj.Kind != record.KindStatus {
		return nil
	}
	to := subj.To
	if served, err := x.serves(ctx, sys, to); err != nil || !served {
		return err
	}
	s, err := x.c.Verifier().Verify(msg.Data())
	if err != nil {
		x.log.Warn("vxp: status does not verify; not listed", "system", sys, "seq", meta.Sequence.Stream, "err", err)
		return nil
	}
	st := s.Envelope
	if st.Kind != envelope.KindStatus || st.Status == nil || st.Status.State.Code() == "" || !slices.Contains(st.To, to) {
		return nil
	}
	// Taken already (updateStatus done marks it: broker.Client.MarkHandedOver): not
	// listed again when redelivered, nor for the agency's next system,
	// whose status consumer reads its statuses from the start. A status
	// taken before the marker was written (an earlier version) has none
	// and is listed again for the next system.
	if handed, err := x.c.HandedOver(ctx, to, st.ID); err != nil || handed {
		return err
	}
	e := entry{Type: TypeStatus, ID: st.ID, Seq: meta.Sequence.Stream, To: to, From: st.From, Of: st.Status.Of,
		Code: st.Status.State.Code(), Stored: meta.Timestamp.UTC()}
	return x.create(ctx, waitKey(sys, e.Type, e.ID, e.To), e)
}

func (x *index) create(ctx context.Context, key string, e entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := x.kv.Create(ctx, key, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("index %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}

// list returns what waits for the system, of one type, oldest first.
func (x *index) list(ctx context.Context, sys, typ string) ([]entry, error) {
	return x.read(ctx, waitPrefix(sys)+typ+".>")
}

// find returns the entries of id waiting for the system (one per agency
// of the system it is addressed to).
func (x *index) find(ctx context.Context, sys, id string) ([]entry, error) {
	if !envelope.IsID(id) {
		return nil, nil
	}
	return x.read(ctx, waitPrefix(sys)+"*."+id+".*")
}

func (x *index) read(ctx context.Context, filter string) ([]entry, error) {
	keys, err := x.keys(ctx, filter)
	if err != nil {
		return nil, err
	}
	out := make([]entry, 0, len(keys))
	for _, k := range keys {
		kve, err := x.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // done meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		var e entry
		if err := json.Unmarshal(kve.Value(), &e); err != nil {
			return nil, fmt.Errorf("read %s: %w", k, err)
		}
		e.key, e.rev = k, kve.Revision()
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

func (x *index) keys(ctx context.Context, filter string) ([]string, error) {
	l, err := x.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", filter, err)
	}
	var keys []string
	for k := range l.Keys() {
		keys = append(keys, k)
	}
	_ = l.Stop()
	return keys, nil
}

// update writes e over the revision it was read at: an entry taken off
// the list meanwhile (done) is not brought back (the error wraps
// errNotWaiting), and one changed meanwhile is not overwritten (a
// conflict, bucket.Conflict).
func (x *index) update(ctx context.Context, e entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = x.kv.Update(ctx, e.key, b, e.rev)
	if err == nil {
		return nil
	}
	if bucket.Conflict(err) {
		if _, gerr := x.kv.Get(ctx, e.key); errors.Is(gerr, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("update %s %s: %w (done meanwhile)", e.Type, e.ID, errNotWaiting)
		}
	}
	return fmt.Errorf("update %s %s: %w", e.Type, e.ID, err)
}

// change applies fn to e and writes it (update), reading it again and
// applying fn anew while another change comes between.
func (x *index) change(ctx context.Context, e entry, fn func(*entry)) error {
	for {
		fn(&e)
		err := x.update(ctx, e)
		if err == nil || !bucket.Conflict(err) {
			return err
		}
		kve, err := x.kv.Get(ctx, e.key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("update %s %s: %w (done meanwhile)", e.Type, e.ID, errNotWaiting)
		}
		if err != nil {
			return fmt.Errorf("update %s %s: %w", e.Type, e.ID, err)
		}
		key := e.key
		e = entry{}
		if err := json.Unmarshal(kve.Value(), &e); err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		e.key, e.rev = key, kve.Revision()
	}
}

func (x *index) remove(ctx context.Context, e entry) error {
	if err := x.kv.Purge(ctx, e.key); err != nil {
		return fmt.Errorf("remove %s %s from the waiting list: %w", e.Type, e.ID, err)
	}
	return nil
}

func (x *index) recordSent(ctx context.Context, sys string, r sentRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = x.kv.Put(ctx, sentKey(sys, r.ID), b)
	return err
}

// sent returns the documents the system sent through sendEdoc, latest
// first, at most n.
func (x *index) sent(ctx context.Context, sys string, n int) ([]sentRecord, error) {
	keys, err := x.keys(ctx, "out."+envelope.Token(sys)+".*")
	if err != nil {
		return nil, err
	}
	// Envelope ids are UUIDv7: their order is their time.
	sort.Sort(sort.Reverse(sort.StringSlice(keys)))
	keys = keys[:min(len(keys), n)]
	out := make([]sentRecord, 0, len(keys))
	for _, k := range keys {
		e, err := x.kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var r sentRecord
		if json.Unmarshal(e.Value(), &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}
