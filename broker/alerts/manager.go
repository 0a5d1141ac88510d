package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docaxis/docaxis/broker/lease"
	"github.com/nats-io/nats.go/jetstream"
)

// Manager checks the rules and keeps the alerts. It is safe for
// concurrent use; Check runs one round at a time.
type Manager struct {
	cfg  Config
	src  Sources
	kv   jetstream.KeyValue
	log  *slog.Logger
	bus  string
	hook *webhook
	subs []func(Event)

	replicas int

	check sync.Mutex // one round at a time; guards downSince
	// downSince: when each link was first seen down.
	downSince map[string]time.Time

	mu       sync.RWMutex
	alerts   map[string]*Alert
	lastRun  time.Time
	failures map[Rule]uint64

	// With WithElection: the election, and whether this process checks
	// the rules now.
	election *lease.Election
	leading  atomic.Bool
}

// LeaseDuty names the lease of the process that checks the rules and
// notifies when several `serve` run on one cluster (package lease).
const LeaseDuty = "alerts"

// Option configures a Manager.
type Option func(*Manager)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(m *Manager) { m.log = l } }

// WithReplicas sets the replicas of the alerts bucket when it is created
// (default 1).
func WithReplicas(n int) Option { return func(m *Manager) { m.replicas = n } }

// WithElection makes Run take part in el, the election of the one process
// that checks the rules and notifies when several `serve` run on one
// cluster (two would send every event twice): Run checks while this
// process holds the lease, and Alerts reads the alerts on record while
// another does.
func WithElection(el *lease.Election) Option { return func(m *Manager) { m.election = el } }

// WithBus names the bus in events (a federation's bus id).
func WithBus(id string) Option { return func(m *Manager) { m.bus = id } }

// WithNotify calls fn with every event, after the webhook has it queued
// (the operator's page listens this way).
func WithNotify(fn func(Event)) Option { return func(m *Manager) { m.subs = append(m.subs, fn) } }

// New opens the alerts bucket on js (creating it), loads the alerts it
// holds (with WithElection, each term does), and starts the webhook.
// Close stops it.
func New(ctx context.Context, js jetstream.JetStream, cfg Config, src Sources, opts ...Option) (*Manager, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, src: src, log: slog.Default(), alerts: map[string]*Alert{}, downSince: map[string]time.Time{}, failures: map[Rule]uint64{}}
	for _, o := range opts {
		o(m)
	}
	kv, err := openBucket(ctx, js, m.replicas)
	if err != nil {
		return nil, err
	}
	m.kv = kv
	// With an election, each term of this process loads them (campaign).
	if m.election == nil {
		if err := m.load(ctx); err != nil {
			return nil, err
		}
	}
	if cfg.Webhook.URL != "" {
		m.hook = startWebhook(cfg.Webhook, m.log)
	}
	return m, nil
}

// load takes the alerts the bucket holds as this process's own.
func (m *Manager) load(ctx context.Context) error {
	list, err := readAll(ctx, m.kv)
	if err != nil {
		return err
	}
	m.check.Lock()
	defer m.check.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.alerts, m.downSince = map[string]*Alert{}, map[string]time.Time{}
	for i := range list {
		a := &list[i]
		m.alerts[a.ID] = a
		if a.Rule == RuleLinkDown && a.State == Firing {
			// Down at least since LinkDown before it was raised: a
			// restart must not resolve it, nor time it from zero.
			m.downSince[a.Subject] = a.Raised.Add(-m.cfg.LinkDown)
		}
	}
	return nil
}

// campaign runs checks while this process holds the lease, from the
// alerts on record.
func (m *Manager) campaign(ctx context.Context) {
	m.election.Run(ctx, func(ctx context.Context) {
		for {
			err := m.load(ctx)
			if err == nil {
				break
			}
			m.log.Warn("alerts: read the alerts on record", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		m.leading.Store(true)
		defer m.leading.Store(false)
		m.run(ctx)
	})
}

// Checking tells whether this process checks the rules (always, without
// WithElection).
func (m *Manager) Checking() bool { return m.election == nil || m.leading.Load() }

// Close stops the webhook; events still queued are not sent (the alerts
// stay in the bucket, and a holding one is sent again on its schedule).
func (m *Manager) Close() {
	if m.hook != nil {
		m.hook.stop()
	}
}

// Config returns the configuration in use, defaults filled in.
func (m *Manager) Config() Config { return m.cfg }

// Run checks every Interval until ctx ends (with WithElection, while this
// process holds the lease).
func (m *Manager) Run(ctx context.Context) {
	if m.election != nil {
		m.campaign(ctx)
		return
	}
	m.run(ctx)
}

func (m *Manager) run(ctx context.Context) {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := m.Check(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("alerts: check", "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// Check runs every rule once at the clock's time, raises, repeats and
// resolves alerts, and returns the events it sent. A rule whose source
// failed keeps its alerts as they were; the error names it.
func (m *Manager) Check(ctx context.Context) ([]Event, error) {
	m.check.Lock()
	defer m.check.Unlock()
	now := m.cfg.Now().UTC()
	found := checked{unknown: map[Rule]error{}}
	m.checkTracking(ctx, now, &found)
	m.checkCertificates(ctx, now, &found)
	m.checkQuarantine(ctx, now, &found)
	m.checkLinks(ctx, now, &found)
	m.checkDisk(ctx, &found)

	var events []Event
	var changed []*Alert
	var gone []string
	holding := map[string]bool{}
	m.mu.Lock()
	for _, c := range found.holds {
		id := alertID(c.rule, c.subject)
		holding[id] = true
		a := m.alerts[id]
		if a == nil || a.State != Firing {
			a = &Alert{ID: id, Rule: c.rule, Subject: c.subject, State: Firing, Raised: now, Notified: now}
			m.alerts[id] = a
			m.fill(a, c)
			events = append(events, Event{Type: EventRaised, At: now, Bus: m.bus, Alert: *a})
			changed = append(changed, a)
			continue
		}
		before := *a
		m.fill(a, c)
		if now.Sub(a.Notified) >= m.cfg.Repeat {
			a.Notified = now
			a.Repeats++
			events = append(events, Event{Type: EventRepeated, At: now, Bus: m.bus, Alert: *a})
		}
		if a.Summary != before.Summary || a.Severity != before.Severity || a.Notified != before.Notified {
			changed = append(changed, a)
		}
	}
	for id, a := range m.alerts {
		switch {
		case a.State == Firing && !holding[id] && found.unknown[a.Rule] == nil:
			a.State, a.Resolved = Resolved, now
			events = append(events, Event{Type: EventResolved, At: now, Bus: m.bus, Alert: *a})
			changed = append(changed, a)
		case a.State == Resolved && now.Sub(a.Resolved) >= m.cfg.Keep:
			delete(m.alerts, id)
			gone = append(gone, id)
		}
	}
	for r := range found.unknown {
		m.failures[r]++
	}
	m.lastRun = now
	saved := make([]Alert, len(changed))
	for i, a := range changed {
		saved[i] = *a
	}
	m.mu.Unlock()

	var errs []error
	for r, err := range found.unknown {
		errs = append(errs, fmt.Errorf("rule %s: %w", r, err))
	}
	for _, a := range saved {
		b, err := json.Marshal(a)
		if err == nil {
			_, err = m.kv.Put(ctx, a.ID, b)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("save alert %s: %w", a.ID, err))
		}
	}
	for _, id := range gone {
		if err := m.kv.Purge(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("forget alert %s: %w", id, err))
		}
	}
	for _, e := range events {
		m.log.Info("alert "+e.Type, "rule", e.Alert.Rule, "subject", e.Alert.Subject, "summary", e.Alert.Summary)
		if m.hook != nil {
			m.hook.enqueue(e)
		}
		for _, fn := range m.subs {
			fn(e)
		}
	}
	return events, errors.Join(errs...)
}

func (m *Manager) fill(a *Alert, c condition) {
	a.Severity, a.Summary, a.Value, a.Details = c.severity, c.summary, c.value, c.details
}

// List returns the alerts, firing first, newest first.
func (m *Manager) List() []Alert {
	m.mu.RLock()
	out := make([]Alert, 0, len(m.alerts))
	for _, a := range m.alerts {
		out = append(out, *a)
	}
	m.mu.RUnlock()
	sortAlerts(out)
	return out
}

// Alerts implements the operator page's source: List in the process
// that checks the rules, the bucket in the others.
func (m *Manager) Alerts(ctx context.Context) ([]Alert, error) {
	if m.Checking() {
		return m.List(), nil
	}
	list, err := readAll(ctx, m.kv)
	if err != nil {
		return nil, err
	}
	sortAlerts(list)
	return list, nil
}
