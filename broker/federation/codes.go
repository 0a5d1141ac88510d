package federation

import "github.com/docaxis/docaxis/broker/record"

// Code bindings are part of the record's schema (broker/record, codes.go):
// every registration on a bus checks them in the directory write itself.
// The names below keep the federation's API.

// ErrCodePattern: not a usable code pattern.
var ErrCodePattern = record.ErrCodePattern

// ErrNotBound: the code is outside the bus's binding, or inside another
// bus's.
var ErrNotBound = record.ErrNotBound

// CodePattern is one parsed pattern (see record.CodePattern).
type CodePattern = record.CodePattern

// Binding is the code patterns bound to one bus.
type Binding = record.Binding

// ParseCodePatterns parses a comma-separated list of patterns.
func ParseCodePatterns(list string) (Binding, error) { return record.ParseCodePatterns(list) }

// ParseCodePattern parses one pattern.
func ParseCodePattern(s string) (CodePattern, error) { return record.ParseCodePattern(s) }

// ParseBinding parses the patterns stored in a bus entry.
func ParseBinding(patterns []string) (Binding, error) { return record.ParseBinding(patterns) }

// claimCheck decides whether bus may serve code, given every active bus's
// binding (bus -> binding; a bus without a binding maps to nil).
func claimCheck(bindings map[string]Binding, bus, code string) error {
	return record.Bindings(bindings).Claim(bus, code)
}
