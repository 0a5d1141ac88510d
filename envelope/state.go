package envelope

import (
	"errors"
	"fmt"
	"strings"
)

// State is the tracking state of one (envelope, recipient) pair.
type State string

const (
	StateSent       State = "sent"       // stored in the recipient's mailbox
	StateDelivered  State = "delivered"  // 01: fetched, verified, receipted
	StateInvalid    State = "invalid"    // verification failed at the recipient
	StateRejected   State = "rejected"   // 02
	StateAccepted   State = "accepted"   // 03
	StateAssigned   State = "assigned"   // 04
	StateProcessing State = "processing" // 05
	StateDone       State = "done"       // 06
	// Recall (edXML 13) and the recipient's answers (15, 16).
	StateRecallRequested State = "recall-requested" // 13
	StateRecallAccepted  State = "recall-accepted"  // 15
	StateRecallRefused   State = "recall-refused"   // 16
)

var stateCodes = map[State]string{
	StateDelivered:       "01",
	StateRejected:        "02",
	StateAccepted:        "03",
	StateAssigned:        "04",
	StateProcessing:      "05",
	StateDone:            "06",
	StateRecallRequested: "13",
	StateRecallAccepted:  "15",
	StateRecallRefused:   "16",
}

// ErrUnknownState is returned by ParseState.
var ErrUnknownState = errors.New("unknown state")

// ErrTransition is matched by every refused state change.
var ErrTransition = errors.New("state change not allowed")

// TransitionError names the current state and the refused target.
type TransitionError struct {
	From, To State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("state change not allowed: %s -> %s (current state is %s; allowed next: %s)",
		e.From, e.To, e.From, strings.Join(stateNames(next[e.From]), ", "))
}

func (e *TransitionError) Unwrap() error { return ErrTransition }

// Code returns the edXML status code of s, or "" when it has none.
func (s State) Code() string { return stateCodes[s] }

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	_, ok := next[s]
	return ok
}

// Terminal reports whether no further state can follow s.
func (s State) Terminal() bool { return s.Valid() && len(next[s]) == 0 }

// Business reports whether s is set by a recipient's clerk (as opposed to
// the receipts sent automatically by the recipient's system).
func (s State) Business() bool {
	switch s {
	case StateAccepted, StateRejected, StateAssigned, StateProcessing, StateDone,
		StateRecallAccepted, StateRecallRefused:
		return true
	}
	return false
}

// ParseState accepts a state name or its edXML code ("03", "3").
func ParseState(s string) (State, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if st := State(s); st.Valid() {
		return st, nil
	}
	if len(s) == 1 {
		s = "0" + s
	}
	for st, code := range stateCodes {
		if code == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("%w %q: want one of %s or an edXML code", ErrUnknownState, s, strings.Join(stateNames(allStates), ", "))
}

var allStates = []State{StateSent, StateDelivered, StateInvalid, StateAccepted, StateRejected,
	StateAssigned, StateProcessing, StateDone, StateRecallRequested, StateRecallAccepted, StateRecallRefused}

// next is the state machine of one (envelope, recipient) pair. A recall can
// be asked while the document is live; a refused recall leaves the recipient
// free to go on with the document.
var next = map[State][]State{
	StateSent:            {StateDelivered, StateInvalid, StateRecallRequested},
	StateInvalid:         {StateDelivered}, // re-driven from quarantine after a fix
	StateDelivered:       {StateAccepted, StateRejected, StateRecallRequested},
	StateAccepted:        {StateAssigned, StateProcessing, StateDone, StateRecallRequested},
	StateAssigned:        {StateProcessing, StateDone, StateRecallRequested},
	StateProcessing:      {StateDone, StateRecallRequested},
	StateDone:            {},
	StateRejected:        {},
	StateRecallRequested: {StateRecallAccepted, StateRecallRefused},
	StateRecallAccepted:  {},
	StateRecallRefused:   {StateAccepted, StateRejected, StateAssigned, StateProcessing, StateDone},
}

// CheckTransition returns nil when a pair in state from may move to to. A
// repeat of the current state is allowed (receipts may be redelivered).
func CheckTransition(from, to State) error {
	if !to.Valid() {
		return fmt.Errorf("%w %q", ErrUnknownState, to)
	}
	if !from.Valid() {
		// Not a refused change but a corrupt or foreign current state.
		return fmt.Errorf("%w %q (current state)", ErrUnknownState, from)
	}
	if from == to {
		return nil
	}
	for _, s := range next[from] {
		if s == to {
			return nil
		}
	}
	return &TransitionError{From: from, To: to}
}

func stateNames(states []State) []string {
	if len(states) == 0 {
		return []string{"none"}
	}
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = string(s)
	}
	return out
}
