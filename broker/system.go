package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go/jetstream"
)

// System is a document system (one DMS installation, with its own
// credentials) that sends and receives for every agency whose directory
// entry names it. It signs for them with its own certificate; the
// directory holds the signed binding of each agency to it.
type System struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Certificate string    `json:"certificate"` // PEM chain, leaf first
	Added       time.Time `json:"added"`
	// Removed is set when the system was taken out of service: its
	// credentials are revoked and its mailbox is gone.
	Removed time.Time `json:"removed,omitzero"`
	Version uint64    `json:"version,omitempty"`
}

// ErrUnknownSystem: no system with that id is registered (or it was removed).
var ErrUnknownSystem = errors.New("unknown system")

// ErrNotServed: a system acted for an agency it does not serve.
var ErrNotServed = signing.ErrNotServed

// SystemActor is how a system appears where an agency code would: in
// service subjects, inbox prefixes and the client's identity. Agency codes
// never hold '=', so it cannot be taken for one.
func SystemActor(id string) string { return "=" + id }

// SystemOfActor returns the system id of a SystemActor, or "".
func SystemOfActor(actor string) string {
	if id, ok := strings.CutPrefix(actor, "="); ok {
		return id
	}
	return ""
}

// CheckSystemID checks a system id: the characters of a code (letters,
// digits, '.', '-').
func CheckSystemID(id string) error {
	if err := envelope.CheckNonStandardCode(id); err != nil {
		return fmt.Errorf("system id: %w", err)
	}
	return nil
}

func systemKey(id string) string { return record.DirectorySystemKey(id) }

// SystemDurable is the mailbox consumer of a system: one for all the
// agencies it serves (a filter subject each).
func SystemDurable(id string) string { return record.SystemDurable(id) }

// TransferDurable is the consumer through which a system catches up with
// the mail stored for agencies that came to it from elsewhere (another
// system, their own mailbox, or no mailbox at all). The bus removes it
// once drained.
func TransferDurable(id string) string { return record.TransferDurable(id) }

// noAgencyFilter matches nothing: a consumer without a filter would read
// the whole record.
func noAgencyFilter(id string) string {
	return record.DocPrefix + envelope.Token(SystemActor(id)) + ".none"
}

// systemConsumerConfig is a system's mailbox: the settings of an agency's,
// with a filter subject per agency served.
func systemConsumerConfig(durable, desc string, filters []string) jetstream.ConsumerConfig {
	cfg := MailboxConsumerConfig("")
	cfg.Durable, cfg.Description = durable, desc
	cfg.FilterSubject, cfg.FilterSubjects = "", filters
	if len(filters) == 1 {
		cfg.FilterSubject, cfg.FilterSubjects = filters[0], nil
	}
	return cfg
}

// RegisterSystem adds a system to the directory and makes its mailbox.
func (c *Client) RegisterSystem(ctx context.Context, s System) error {
	if err := CheckSystemID(s.ID); err != nil {
		return err
	}
	certs, err := signing.ParseCerts([]byte(s.Certificate))
	if err != nil {
		return fmt.Errorf("register system %s: %w", s.ID, err)
	}
	if got := signing.SystemOf(certs[0]); got != s.ID {
		return fmt.Errorf("register system %s: %w: certificate names system %q", s.ID, signing.ErrAgencyMismatch, got)
	}
	if s.Added.IsZero() {
		s.Added = time.Now().UTC()
	}
	if err := c.syncSystemMailbox(ctx, s.ID, nil, nil, nil); err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if _, err := c.dir.kv.Put(ctx, systemKey(s.ID), b); err != nil {
		return fmt.Errorf("register system %s in the directory: %w", s.ID, err)
	}
	return nil
}

// LookupSystem returns system id's entry; a removed system is
// ErrUnknownSystem.
func (c *Client) LookupSystem(ctx context.Context, id string) (*System, error) {
	e, err := c.dir.kv.Get(ctx, systemKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("%w %s: not registered on this bus (docaxis system add %s)", ErrUnknownSystem, id, id)
	}
	if err != nil {
		return nil, fmt.Errorf("look up system %s: %w", id, err)
	}
	var s System
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return nil, fmt.Errorf("look up system %s: %w", id, err)
	}
	s.Version = e.Revision()
	if !s.Removed.IsZero() {
		return &s, fmt.Errorf("%w %s: removed at %s", ErrUnknownSystem, id, s.Removed.UTC().Format(time.RFC3339))
	}
	return &s, nil
}

// Systems lists the systems, removed ones included, sorted by id.
func (c *Client) Systems(ctx context.Context) ([]System, error) {
	var out []System
	err := c.dir.scan(ctx, record.DirectorySystemFilter, 0, func(key string, rev uint64, value []byte) {
		var s System
		if json.Unmarshal(value, &s) == nil && systemKey(s.ID) == key {
			s.Version = rev
			out = append(out, s)
		}
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// RemoveSystem takes a system out of service: its mailbox consumers are
// deleted and its entry keeps the time. It is refused while the system
// still serves agencies (move or delete them first: their mail would have
// nowhere to go).
func (c *Client) RemoveSystem(ctx context.Context, id string) error {
	s, err := c.LookupSystem(ctx, id)
	if err != nil {
		return err
	}
	served, err := c.systemFilters(ctx, id)
	if err != nil {
		return err
	}
	if len(served) > 0 {
		return fmt.Errorf("remove system %s: it still serves %d agencies (move them with 'docaxis agency add CODE --system OTHER' or delete them first)", id, len(served))
	}
	s.Removed = time.Now().UTC()
	b, _ := json.Marshal(s)
	if _, err := c.dir.kv.Put(ctx, systemKey(id), b); err != nil {
		return fmt.Errorf("remove system %s: %w", id, err)
	}
	for _, name := range []string{SystemDurable(id), TransferDurable(id)} {
		if err := c.js.DeleteConsumer(ctx, record.Stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("remove system %s: delete consumer %s: %w", id, name, err)
		}
	}
	return nil
}

// systemFilters returns the agencies a system's mailbox serves now (from
// its consumer's filters).
func (c *Client) systemFilters(ctx context.Context, id string) ([]string, error) {
	cons, err := c.js.Consumer(ctx, record.Stream, SystemDurable(id))
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mailbox of system %s: %w", id, err)
	}
	return record.MailboxAgencies(cons.CachedInfo().Config), nil
}

// syncSystemMailbox brings system id's mailbox to serve its agencies plus
// add minus remove. catchUp lists added agencies that may have mail
// stored already (they come from elsewhere): the system's transfer
// consumer reads it from the start of the record; the receive path's
// markers skip what was handed over before.
func (c *Client) syncSystemMailbox(ctx context.Context, id string, add, remove, catchUp []string) error {
	cur, err := c.systemFilters(ctx, id)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	for _, a := range cur {
		set[a] = true
	}
	for _, a := range add {
		set[a] = true
	}
	for _, a := range remove {
		delete(set, a)
	}
	codes := make([]string, 0, len(set))
	for a := range set {
		codes = append(codes, a)
	}
	slices.Sort(codes)
	filters := make([]string, 0, len(codes))
	for _, a := range codes {
		filters = append(filters, record.MailboxFilter(a))
	}
	if len(filters) == 0 {
		filters = []string{noAgencyFilter(id)}
	}
	cfg := systemConsumerConfig(SystemDurable(id), "mailbox of system "+id, filters)
	if _, err := c.js.CreateOrUpdateConsumer(ctx, record.Stream, cfg); err != nil {
		return fmt.Errorf("mailbox of system %s (%d agencies): %w", id, len(codes), err)
	}
	if len(catchUp) == 0 && len(remove) == 0 {
		return nil
	}
	return c.syncTransfer(ctx, id, catchUp, remove)
}

// syncTransfer remakes the transfer consumer of system id for the agencies
// still catching up plus add, minus remove. A consumer only goes forward,
// so adding an agency means reading again from the start.
func (c *Client) syncTransfer(ctx context.Context, id string, add, remove []string) error {
	name := TransferDurable(id)
	set := map[string]bool{}
	if cons, err := c.js.Consumer(ctx, record.Stream, name); err == nil {
		info, err := cons.Info(ctx)
		if err == nil && (info.NumPending > 0 || info.NumAckPending > 0) {
			for _, a := range record.MailboxAgencies(info.Config) {
				set[a] = true
			}
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("transfer mailbox of system %s: %w", id, err)
	}
	for _, a := range add {
		set[a] = true
	}
	for _, a := range remove {
		delete(set, a)
	}
	if err := c.js.DeleteConsumer(ctx, record.Stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("transfer mailbox of system %s: %w", id, err)
	}
	if len(set) == 0 {
		return nil
	}
	var filters []string
	for a := range set {
		filters = append(filters, record.MailboxFilter(a))
	}
	slices.Sort(filters)
	cfg := systemConsumerConfig(name, "mail stored before these agencies came to system "+id, filters)
	if _, err := c.js.CreateOrUpdateConsumer(ctx, record.Stream, cfg); err != nil {
		return fmt.Errorf("transfer mailbox of system %s: %w", id, err)
	}
	return nil
}

// DrainTransfers deletes the transfer consumers that have nothing left:
// every moved agency's stored mail was handed over. The bus runs it now
// and then.
func (c *Client) DrainTransfers(ctx context.Context) error {
	systems, err := c.Systems(ctx)
	if err != nil {
		return err
	}
	for _, s := range systems {
		cons, err := c.js.Consumer(ctx, record.Stream, TransferDurable(s.ID))
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			if err := c.js.DeleteConsumer(ctx, record.Stream, TransferDurable(s.ID)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return err
			}
		}
	}
	return nil
}
