package envelope_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/envelope"
)

var allStates = []envelope.State{
	envelope.StateSent, envelope.StateDelivered, envelope.StateInvalid, envelope.StateRejected,
	envelope.StateAccepted, envelope.StateAssigned, envelope.StateProcessing, envelope.StateDone,
	envelope.StateRecallRequested, envelope.StateRecallAccepted, envelope.StateRecallRefused,
}

// TestTransitionsAllowed lists every change the delivery and status model
// allows; a missing one would stop clerks from doing their work.
func TestTransitionsAllowed(t *testing.T) {
	tests := []struct{ from, to envelope.State }{
		{envelope.StateSent, envelope.StateDelivered},
		{envelope.StateSent, envelope.StateInvalid},
		{envelope.StateDelivered, envelope.StateAccepted},
		{envelope.StateDelivered, envelope.StateRejected},
		{envelope.StateAccepted, envelope.StateAssigned},
		{envelope.StateAccepted, envelope.StateProcessing},
		{envelope.StateAccepted, envelope.StateDone},
		{envelope.StateAssigned, envelope.StateProcessing},
		{envelope.StateAssigned, envelope.StateDone},
		{envelope.StateProcessing, envelope.StateDone},
		// A message re-driven from quarantine after a fix.
		{envelope.StateInvalid, envelope.StateDelivered},
		// Recall while the document is live, and its answers.
		{envelope.StateSent, envelope.StateRecallRequested},
		{envelope.StateDelivered, envelope.StateRecallRequested},
		{envelope.StateAccepted, envelope.StateRecallRequested},
		{envelope.StateProcessing, envelope.StateRecallRequested},
		{envelope.StateRecallRequested, envelope.StateRecallAccepted},
		{envelope.StateRecallRequested, envelope.StateRecallRefused},
		{envelope.StateRecallRefused, envelope.StateProcessing},
	}
	for _, tt := range tests {
		if err := envelope.CheckTransition(tt.from, tt.to); err != nil {
			t.Errorf("CheckTransition(%s, %s) = %v, want nil", tt.from, tt.to, err)
		}
	}
	// Receipts may be redelivered: repeating the current state is fine.
	for _, s := range allStates {
		if err := envelope.CheckTransition(s, s); err != nil {
			t.Errorf("CheckTransition(%s, %s) = %v, want nil", s, s, err)
		}
	}
}

func TestTransitionsRefused(t *testing.T) {
	tests := []struct{ from, to envelope.State }{
		{envelope.StateRejected, envelope.StateDone},
		{envelope.StateRejected, envelope.StateAccepted},
		{envelope.StateDone, envelope.StateProcessing},
		{envelope.StateDone, envelope.StateRejected},
		{envelope.StateSent, envelope.StateAccepted}, // not delivered yet
		{envelope.StateSent, envelope.StateDone},
		{envelope.StateInvalid, envelope.StateAccepted},
		{envelope.StateDelivered, envelope.StateSent},
		{envelope.StateDelivered, envelope.StateInvalid},
		{envelope.StateDelivered, envelope.StateProcessing},
		{envelope.StateAccepted, envelope.StateRejected},
		{envelope.StateAccepted, envelope.StateDelivered},
		{envelope.StateAssigned, envelope.StateAccepted},
		{envelope.StateProcessing, envelope.StateAssigned},
		{envelope.StateRecallAccepted, envelope.StateProcessing},
		{envelope.StateRecallRequested, envelope.StateDone},
		{envelope.StateDone, envelope.StateRecallRequested},
	}
	for _, tt := range tests {
		t.Run(string(tt.from)+"->"+string(tt.to), func(t *testing.T) {
			err := envelope.CheckTransition(tt.from, tt.to)
			if !errors.Is(err, envelope.ErrTransition) {
				t.Fatalf("CheckTransition = %v, want ErrTransition", err)
			}
			var te *envelope.TransitionError
			if !errors.As(err, &te) {
				t.Fatalf("CheckTransition = %T, want *TransitionError", err)
			}
			if te.From != tt.from || te.To != tt.to {
				t.Errorf("TransitionError{%s, %s}, want {%s, %s}", te.From, te.To, tt.from, tt.to)
			}
			// A clerk reads the message: it must name the current state.
			if !strings.Contains(err.Error(), "current state is "+string(tt.from)) {
				t.Errorf("message %q does not name the current state", err)
			}
		})
	}
}

func TestTransitionUnknownStates(t *testing.T) {
	for _, tt := range []struct{ from, to envelope.State }{
		{envelope.StateSent, "archived"},
		{envelope.StateSent, ""},
		{"archived", envelope.StateDone},
		{"", envelope.StateDelivered},
	} {
		err := envelope.CheckTransition(tt.from, tt.to)
		if !errors.Is(err, envelope.ErrUnknownState) {
			t.Errorf("CheckTransition(%q, %q) = %v, want ErrUnknownState", tt.from, tt.to, err)
		}
	}
}

// TestTerminalStates checks that nothing but a repeat follows a terminal
// state, so a terminal state is final for every target.
func TestTerminalStates(t *testing.T) {
	terminal := map[envelope.State]bool{envelope.StateDone: true, envelope.StateRejected: true, envelope.StateRecallAccepted: true}
	for _, s := range allStates {
		if s.Terminal() != terminal[s] {
			t.Errorf("%s.Terminal() = %v", s, s.Terminal())
		}
		if !terminal[s] {
			continue
		}
		for _, to := range allStates {
			if to != s && envelope.CheckTransition(s, to) == nil {
				t.Errorf("terminal %s may move to %s", s, to)
			}
		}
	}
	if envelope.State("bogus").Terminal() {
		t.Error("an unknown state is not terminal")
	}
}

func TestParseState(t *testing.T) {
	tests := []struct {
		in   string
		want envelope.State
	}{
		{"sent", envelope.StateSent},
		{"delivered", envelope.StateDelivered},
		{"invalid", envelope.StateInvalid},
		{"accepted", envelope.StateAccepted},
		{"rejected", envelope.StateRejected},
		{"assigned", envelope.StateAssigned},
		{"processing", envelope.StateProcessing},
		{"done", envelope.StateDone},
		{"recall-requested", envelope.StateRecallRequested},
		{"recall-accepted", envelope.StateRecallAccepted},
		{"recall-refused", envelope.StateRecallRefused},
		{"Accepted", envelope.StateAccepted},
		{" done\n", envelope.StateDone},
		{"01", envelope.StateDelivered},
		{"1", envelope.StateDelivered},
		{"02", envelope.StateRejected},
		{"2", envelope.StateRejected},
		{"03", envelope.StateAccepted},
		{"3", envelope.StateAccepted},
		{"04", envelope.StateAssigned},
		{"05", envelope.StateProcessing},
		{"06", envelope.StateDone},
		{"6", envelope.StateDone},
		{"13", envelope.StateRecallRequested},
		{"15", envelope.StateRecallAccepted},
		{"16", envelope.StateRecallRefused},
	}
	for _, tt := range tests {
		got, err := envelope.ParseState(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseState(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, in := range []string{"", "0", "00", "07", "7", "14", "003", "+3", "-3", "3.0", "archived", "đã nhận", "sent,done", "0x3"} {
		got, err := envelope.ParseState(in)
		if !errors.Is(err, envelope.ErrUnknownState) || got != "" {
			t.Errorf("ParseState(%q) = %q, %v; want ErrUnknownState", in, got, err)
		}
	}
}

// TestStateCodes checks that every state with an edXML code parses back
// from it, and that codes are unique.
func TestStateCodes(t *testing.T) {
	seen := map[string]envelope.State{}
	for _, s := range allStates {
		if !s.Valid() {
			t.Errorf("%s.Valid() = false", s)
		}
		got, err := envelope.ParseState(string(s))
		if err != nil || got != s {
			t.Errorf("ParseState(%q) = %q, %v", s, got, err)
		}
		c := s.Code()
		if c == "" {
			continue
		}
		if other, ok := seen[c]; ok {
			t.Errorf("%s and %s share code %s", s, other, c)
		}
		seen[c] = s
		if got, err := envelope.ParseState(c); err != nil || got != s {
			t.Errorf("ParseState(%q) = %q, %v; want %s", c, got, err, s)
		}
	}
	for s, code := range map[envelope.State]string{envelope.StateDelivered: "01", envelope.StateRejected: "02", envelope.StateAccepted: "03",
		envelope.StateAssigned: "04", envelope.StateProcessing: "05", envelope.StateDone: "06", envelope.StateSent: ""} {
		if s.Code() != code {
			t.Errorf("%s.Code() = %q, want %q", s, s.Code(), code)
		}
	}
}

func TestStateBusiness(t *testing.T) {
	business := map[envelope.State]bool{
		envelope.StateAccepted: true, envelope.StateRejected: true, envelope.StateAssigned: true,
		envelope.StateProcessing: true, envelope.StateDone: true, envelope.StateRecallAccepted: true, envelope.StateRecallRefused: true,
	}
	for _, s := range allStates {
		if s.Business() != business[s] {
			t.Errorf("%s.Business() = %v", s, s.Business())
		}
	}
}
