// Package report counts what crossed the bus: documents sent, received,
// delivered, rejected and overdue per day or month, per agency, document
// system or province, and delivery-time percentiles. The figures come from
// the tracking pairs, the bus's verified state of the record (one pair per
// envelope and recipient), never from what a message claims.
package report

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

// By groups the figures.
type By string

// Groupings.
const (
	ByNone     By = ""         // the whole bus
	ByAgency   By = "agency"   // per agency
	BySystem   By = "system"   // per document system serving the agency
	ByProvince By = "province" // per province or ministry (top of the hierarchy)
)

// Period is the length of a row's period.
type Period string

// Periods.
const (
	Day   Period = "day"
	Month Period = "month"
	All   Period = "all" // one row for the whole range
)

// ErrBadOptions: the options are not a report that can be made.
var ErrBadOptions = errors.New("bad report options")

// Options select a report.
type Options struct {
	// From and To bound the range, [From, To), by when the bus recorded
	// the envelope copy (its "sent" event).
	From, To time.Time
	By       By
	Period   Period
	// Location sets day and month boundaries (default Vietnam time).
	Location *time.Location
}

// Counts are the figures of one row.
//
// Sent counts envelopes (a document to five agencies is sent once);
// Received counts copies (it is received five times). Delivered, Rejected,
// Invalid and Overdue count copies by what the recipient did: grouped by
// agency, they are the agency's figures as a recipient (how much of what
// it received it receipted, rejected, or left past its due date), which is
// what a ministry asks of its provinces.
type Counts struct {
	Sent      int `json:"sent"`
	Received  int `json:"received"`
	Delivered int `json:"delivered"`
	Rejected  int `json:"rejected"`
	Invalid   int `json:"invalid"`
	Overdue   int `json:"overdue"`
}

// Row is one period of one group.
type Row struct {
	Period string `json:"period"` // 2025-03-14, 2025-03, or "from..to"
	Key    string `json:"key,omitempty"`
	Name   string `json:"name,omitempty"`
	Counts
	// Delivery-time percentiles, in seconds from sent to delivered, of the
	// copies received (0 when none was delivered).
	P50 float64 `json:"delivery_p50_s"`
	P90 float64 `json:"delivery_p90_s"`
	P99 float64 `json:"delivery_p99_s"`
}

// Report is the rows and their total.
type Report struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	By     By        `json:"by,omitempty"`
	Period Period    `json:"period"`
	Rows   []Row     `json:"rows"`
	Total  Row       `json:"total"`
}

// Source is where a report reads from: the bus's tracking and directory
// (a *broker.Client of the bus).
type Source interface {
	EachTracking(ctx context.Context, fn func(*broker.Tracking) error) error
	Agencies(ctx context.Context) ([]broker.Agency, error)
}

// Make reads every tracking pair of src and counts those in range.
func Make(ctx context.Context, src Source, o Options) (*Report, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	dir, err := src.Agencies(ctx)
	if err != nil {
		return nil, fmt.Errorf("report: read the directory: %w", err)
	}
	b := NewBuilder(dir, o)
	if err := src.EachTracking(ctx, func(t *broker.Tracking) error { b.Add(t); return nil }); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return b.Report(), nil
}

func (o *Options) check() error {
	if o.Location == nil {
		o.Location = edxml.Vietnam
	}
	if o.Period == "" {
		o.Period = Month
	}
	switch o.By {
	case ByNone, ByAgency, BySystem, ByProvince:
	default:
		return fmt.Errorf("%w: by %q: want agency, system or province", ErrBadOptions, o.By)
	}
	switch o.Period {
	case Day, Month, All:
	default:
		return fmt.Errorf("%w: period %q: want day, month or all", ErrBadOptions, o.Period)
	}
	if o.From.IsZero() || o.To.IsZero() || !o.To.After(o.From) {
		return fmt.Errorf("%w: range %s to %s: want a start before the end", ErrBadOptions, o.From.Format(time.DateOnly), o.To.Format(time.DateOnly))
	}
	return nil
}

// Builder counts pairs one at a time (for callers that already read them).
type Builder struct {
	o     Options
	dir   map[string]broker.Agency
	rows  map[[2]string]*acc
	total *acc
	seen  map[[2]string]bool // (row, envelope): an envelope is sent once per row
}

type acc struct {
	row   Row
	times []float64
}

// NewBuilder starts a report over the directory dir; o is checked by Make
// (a Builder made directly takes o as given, with Vietnam time).
func NewBuilder(dir []broker.Agency, o Options) *Builder {
	if o.Location == nil {
		o.Location = edxml.Vietnam
	}
	if o.Period == "" {
		o.Period = Month
	}
	b := &Builder{o: o, dir: make(map[string]broker.Agency, len(dir)), rows: map[[2]string]*acc{},
		total: &acc{}, seen: map[[2]string]bool{}}
	for _, a := range dir {
		b.dir[a.Code] = a
	}
	return b
}

// sentAt is when the bus recorded the copy.
func sentAt(t *broker.Tracking) time.Time {
	for _, e := range t.History {
		if e.State == envelope.StateSent {
			return e.At
		}
	}
	if len(t.History) > 0 {
		return t.History[0].At
	}
	return t.Created
}

// Add counts one pair when it is in range.
func (b *Builder) Add(t *broker.Tracking) {
	at := sentAt(t)
	if at.Before(b.o.From) || !at.Before(b.o.To) {
		return
	}
	period := b.period(at)
	// The sender's side counts the envelope once per row (a document to
	// five agencies is sent once); the recipient's side counts the copy.
	if sk := b.group(t.Sender); b.once(period+"\x00"+sk, t.Envelope) {
		b.acc(period, sk).row.Sent++
	}
	if b.once("\x00total", t.Envelope) {
		b.total.row.Sent++
	}
	b.acc(period, b.group(t.Recipient)).received(t)
	b.total.received(t)
}

// once reports whether envelope id is seen in row for the first time.
func (b *Builder) once(row, id string) bool {
	k := [2]string{row, id}
	if b.seen[k] {
		return false
	}
	b.seen[k] = true
	return true
}

func (a *acc) received(t *broker.Tracking) {
	a.row.Received++
	if d := t.Reached(envelope.StateDelivered); !d.IsZero() {
		a.row.Delivered++
		a.times = append(a.times, d.Sub(sentAt(t)).Seconds())
	}
	if !t.Reached(envelope.StateRejected).IsZero() {
		a.row.Rejected++
	}
	if !t.Reached(envelope.StateInvalid).IsZero() {
		a.row.Invalid++
	}
	if t.Overdue {
		a.row.Overdue++
	}
}

func (b *Builder) period(at time.Time) string {
	at = at.In(b.o.Location)
	switch b.o.Period {
	case Day:
		return at.Format(time.DateOnly)
	case Month:
		return at.Format("2006-01")
	}
	return b.rangeLabel()
}

// rangeLabel is the range as days, both included ([From, To) ends the day
// before To).
func (b *Builder) rangeLabel() string {
	return b.o.From.In(b.o.Location).Format(time.DateOnly) + ".." + b.o.To.Add(-time.Nanosecond).In(b.o.Location).Format(time.DateOnly)
}

func (b *Builder) acc(period, key string) *acc {
	k := [2]string{period, key}
	a := b.rows[k]
	if a == nil {
		a = &acc{row: Row{Period: period, Key: key, Name: b.name(key)}}
		b.rows[k] = a
	}
	return a
}

// group is the row key of agency under the report's grouping.
func (b *Builder) group(agency string) string {
	switch b.o.By {
	case ByAgency:
		return agency
	case BySystem:
		if a, ok := b.dir[agency]; ok && a.System != "" {
			return a.System
		}
		return "-" // agencies with credentials of their own
	case ByProvince:
		return b.province(agency)
	}
	return ""
}

// province is the top of agency's hierarchy: its parents followed up, or,
// for an agency the directory does not place, the level-1 unit its code
// names (the last part of V1V2V3.Z1Z2.Y1Y2.MX1X2, as 000.00.00.MX1X2).
func (b *Builder) province(agency string) string {
	code := agency
	for range 16 { // a cycle in the directory must not hang a report
		a, ok := b.dir[code]
		if !ok || a.Parent == "" || a.Parent == code {
			break
		}
		code = a.Parent
	}
	if _, ok := b.dir[code]; ok && code != agency {
		return code
	}
	if i := strings.LastIndexByte(agency, '.'); i >= 0 && len(agency) == len("000.00.00.H41") {
		return "000.00.00." + agency[i+1:]
	}
	return agency
}

func (b *Builder) name(key string) string {
	if a, ok := b.dir[key]; ok {
		return a.Name
	}
	return ""
}

// Report returns the rows, by period then key, and the total.
func (b *Builder) Report() *Report {
	r := &Report{From: b.o.From, To: b.o.To, By: b.o.By, Period: b.o.Period, Rows: []Row{}}
	for _, a := range b.rows {
		a.finish()
		r.Rows = append(r.Rows, a.row)
	}
	sort.Slice(r.Rows, func(i, j int) bool {
		if r.Rows[i].Period != r.Rows[j].Period {
			return r.Rows[i].Period < r.Rows[j].Period
		}
		return r.Rows[i].Key < r.Rows[j].Key
	})
	total := b.total
	total.finish()
	total.row.Period = b.rangeLabel()
	r.Total = total.row
	return r
}

func (a *acc) finish() {
	slices.Sort(a.times)
	a.row.P50, a.row.P90, a.row.P99 = Percentile(a.times, 50), Percentile(a.times, 90), Percentile(a.times, 99)
}

// Percentile is the nearest-rank percentile p of sorted values (0 for none).
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
