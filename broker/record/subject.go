package record

import (
	"strings"

	"github.com/docaxis/docaxis/envelope"
)

// Subject is a parsed subject of the record:
//
//	axis.doc.<to>.<from>             a copy of an envelope for recipient to, sent by from
//	axis.status.<to>.<from>          a status for the original sender to, reported by from
//
// To is the agency the message is addressed to (the copy's recipient, the
// status's original sender); From is the agency that wrote it (the
// envelope's sender, the status's reporter).
type Subject struct {
	Kind     string // KindDoc or KindStatus
	To, From string // agency codes
}

// String is the subject s was parsed from.
func (s Subject) String() string {
	if s.Kind == KindStatus {
		return StatusSubject(s.To, s.From)
	}
	return DocSubject(s.To, s.From)
}

// ParseSubject parses a subject of the record. It accepts exactly
// axis.<doc|status>.<token>.<token> with non-empty tokens free of
// wildcards, white space and control characters; anything else (another
// kind, more or fewer tokens, an empty one, a pattern) is not of the
// record.
func ParseSubject(subject string) (Subject, bool) {
	rest, ok := strings.CutPrefix(subject, "axis.")
	if !ok {
		return Subject{}, false
	}
	kind, rest, _ := strings.Cut(rest, ".")
	a, b, ok := strings.Cut(rest, ".")
	if !ok || (kind != KindDoc && kind != KindStatus) || !plainToken(a) || !plainToken(b) {
		return Subject{}, false
	}
	return Subject{Kind: kind, To: envelope.CodeFromToken(a), From: envelope.CodeFromToken(b)}, true
}

// plainToken reports whether t is one literal token of a subject.
func plainToken(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c == 0x7f || c == '.' || c == '*' || c == '>' {
			return false
		}
	}
	return true
}
