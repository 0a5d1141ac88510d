package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Codes belong to buses: at admission the national operator binds code
// patterns to each bus (`docaxis federation member add ID --ca FILE
// --codes LIST`), and a bus may register (claim) only the codes its
// binding covers. The national keeps each bus's entry, with its patterns,
// under DirectoryBusKey in its directory, and every member copies those
// entries into its own: every registration on a bus checks the code
// against them (Bindings.Claim). A pattern has the dot-separated fields of
// a code; each field is a literal, "*" (any value of that field) or a
// literal prefix ending in "*":
//
//	*.*.*.H14        every agency code of province H14 (…​.H14)
//	000.05.*.*       every code whose first two fields are 000.05
//	000.00.00.H14    exactly that code
//	*.*.*.G*         every code whose last field starts with G
//
// A code matches a pattern with as many fields. Two buses' bindings may not
// overlap (some code would match both), so the binding, not the order in
// which claims arrive, decides which bus serves a code. A bus admitted
// without a binding (before bindings existed) may claim only codes no
// binding covers, first come first served, as before.

// DirectoryBusPrefix + a bus id is the directory key of the bus's entry
// in a federation (federation.BusEntry), code binding included.
const DirectoryBusPrefix = "fedbus."

// DirectoryBusKey is the directory key of bus id's entry.
func DirectoryBusKey(id string) string { return DirectoryBusPrefix + id }

// ErrCodePattern: not a usable code pattern.
var ErrCodePattern = errors.New("invalid code pattern")

// ErrNotBound: the code is outside the bus's binding, or inside another
// bus's.
var ErrNotBound = errors.New("code not bound to this bus")

// maxPatterns bounds a binding; a province needs a handful.
const maxPatterns = 256

// CodePattern is one parsed pattern.
type CodePattern struct {
	fields []string
	text   string
}

func (p CodePattern) String() string { return p.text }

// ParseCodePatterns parses a comma-separated list of patterns (spaces
// around the commas ignored), dropping duplicates.
func ParseCodePatterns(list string) (Binding, error) {
	var out Binding
	seen := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := ParseCodePattern(s)
		if err != nil {
			return nil, err
		}
		if seen[p.text] {
			continue
		}
		seen[p.text] = true
		out = append(out, p)
		if len(out) > maxPatterns {
			return nil, fmt.Errorf("%w: more than %d patterns", ErrCodePattern, maxPatterns)
		}
	}
	return out, nil
}

// ParseCodePattern parses one pattern.
func ParseCodePattern(s string) (CodePattern, error) {
	if s == "" || len(s) > 64 {
		return CodePattern{}, fmt.Errorf("%w %q: want 1 to 64 characters", ErrCodePattern, s)
	}
	fields := strings.Split(s, ".")
	for _, f := range fields {
		lit := strings.TrimSuffix(f, "*")
		switch {
		case f == "":
			return CodePattern{}, fmt.Errorf("%w %q: empty field", ErrCodePattern, s)
		case strings.Contains(lit, "*"):
			return CodePattern{}, fmt.Errorf("%w %q: '*' only as a whole field or at the end of one", ErrCodePattern, s)
		}
		for _, r := range lit {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return CodePattern{}, fmt.Errorf("%w %q: character %q not allowed (letters, digits, '-', '*')", ErrCodePattern, s, r)
			}
		}
	}
	return CodePattern{fields: fields, text: s}, nil
}

// Match reports whether code matches the pattern.
func (p CodePattern) Match(code string) bool {
	fields := strings.Split(code, ".")
	if len(fields) != len(p.fields) {
		return false
	}
	for i, f := range p.fields {
		if lit, wild := strings.CutSuffix(f, "*"); wild {
			if !strings.HasPrefix(fields[i], lit) {
				return false
			}
		} else if fields[i] != f {
			return false
		}
	}
	return true
}

// Overlaps reports whether some code matches both patterns.
func (p CodePattern) Overlaps(q CodePattern) bool {
	if len(p.fields) != len(q.fields) {
		return false
	}
	for i := range p.fields {
		a, aw := strings.CutSuffix(p.fields[i], "*")
		b, bw := strings.CutSuffix(q.fields[i], "*")
		switch {
		case aw && bw:
			if !strings.HasPrefix(a, b) && !strings.HasPrefix(b, a) {
				return false
			}
		case aw:
			if !strings.HasPrefix(b, a) {
				return false
			}
		case bw:
			if !strings.HasPrefix(a, b) {
				return false
			}
		case a != b:
			return false
		}
	}
	return true
}

// Binding is the code patterns bound to one bus.
type Binding []CodePattern

// ParseBinding parses the patterns stored in a bus entry.
func ParseBinding(patterns []string) (Binding, error) {
	return ParseCodePatterns(strings.Join(patterns, ","))
}

// Covers reports whether a pattern of b matches code.
func (b Binding) Covers(code string) bool {
	for _, p := range b {
		if p.Match(code) {
			return true
		}
	}
	return false
}

// Strings returns the patterns as text, sorted.
func (b Binding) Strings() []string {
	out := make([]string, len(b))
	for i, p := range b {
		out[i] = p.text
	}
	sort.Strings(out)
	return out
}

// Overlap returns a pattern of b and one of c that overlap, if any.
func (b Binding) Overlap(c Binding) (CodePattern, CodePattern, bool) {
	for _, p := range b {
		for _, q := range c {
			if p.Overlaps(q) {
				return p, q, true
			}
		}
	}
	return CodePattern{}, CodePattern{}, false
}

// BusBinding is what the claim check reads of a bus entry (the fields of
// federation.BusEntry it needs).
type BusBinding struct {
	ID      string    `json:"id"`
	Codes   []string  `json:"codes,omitempty"`
	Removed time.Time `json:"removed,omitzero"`
}

// DecodeBusBinding decodes the value of a DirectoryBusKey entry.
func DecodeBusBinding(value []byte) (BusBinding, error) {
	var b BusBinding
	if err := json.Unmarshal(value, &b); err != nil {
		return BusBinding{}, fmt.Errorf("bus entry: %w", err)
	}
	return b, nil
}

// Bindings are the active buses' bindings: bus id -> its binding (nil for
// a bus admitted without one). A removed bus binds nothing.
type Bindings map[string]Binding

// Add records b's binding, leaving out a removed bus (and an unreadable
// binding, which binds nothing: the national refused to write it).
func (m Bindings) Add(b BusBinding) {
	if !b.Removed.IsZero() || b.ID == "" {
		return
	}
	m[b.ID], _ = ParseBinding(b.Codes)
}

// Claim decides whether bus may serve code: no other bus's binding covers
// it, and bus's own binding (when it has one) does.
func (m Bindings) Claim(bus, code string) error {
	for other, b := range m {
		if other != bus && b.Covers(code) {
			return fmt.Errorf("%w: %s is bound to bus %s", ErrNotBound, code, other)
		}
	}
	if own := m[bus]; len(own) > 0 && !own.Covers(code) {
		return fmt.Errorf("%w: %s is outside the codes bound to bus %s (%s)", ErrNotBound, code, bus, strings.Join(own.Strings(), ","))
	}
	return nil
}
