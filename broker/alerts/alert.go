package alerts

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Alert states.
const (
	Firing   = "firing"
	Resolved = "resolved"
)

// Alert is one rule holding (or having held) for one subject.
type Alert struct {
	// ID is stable for a rule and subject: the same condition coming back
	// after it was resolved is the same ID, raised anew.
	ID       string         `json:"id"`
	Rule     Rule           `json:"rule"`
	Subject  string         `json:"subject"`
	Severity string         `json:"severity"`
	State    string         `json:"state"`
	Summary  string         `json:"summary"`
	Value    float64        `json:"value"`
	Details  map[string]any `json:"details,omitempty"`
	Raised   time.Time      `json:"raised"`
	// Notified is when it was last sent (raised or repeated); Repeats
	// counts the repeats.
	Notified time.Time `json:"notified"`
	Repeats  int       `json:"repeats"`
	Resolved time.Time `json:"resolved,omitzero"`
}

// alertID is the KV key of (rule, subject): subjects hold characters keys
// may not (paths, colons), so they are hashed.
func alertID(rule Rule, subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return string(rule) + "." + hex.EncodeToString(sum[:8])
}

// Event types.
const (
	EventRaised   = "raised"
	EventRepeated = "repeated"
	EventResolved = "resolved"
)

// Event is what a notifier receives: the webhook's JSON body.
type Event struct {
	Type  string    `json:"type"`
	At    time.Time `json:"at"`
	Bus   string    `json:"bus,omitempty"`
	Alert Alert     `json:"alert"`
}
