package record_test

import (
	"testing"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
)

// The bus's internal subjects answer only its own processes' inboxes; an
// agency's inbox and a consumer's ack subject (a delivery an agency
// pulled onto the subject) are not one.
func TestBusReply(t *testing.T) {
	tests := []struct {
		reply string
		want  bool
	}{
		{"_INBOX.abcdefghijklmnopqrstuv.1", true},
		{"_INBOX.x", true},
		{"", false},
		{"$JS.ACK.AXIS.mbox_H99.1.5.5.1700000000000000000.0", false},
		{"_INBOX_000_00_00_H99.abc", false},
		{"_INBOX.", false},
		{"_INBOX.a..b", false},
		{"_INBOX.*", false},
		{"_INBOX.>", false},
		{"axis.evt.track.G22", false},
	}
	for _, tt := range tests {
		if got := record.BusReply(tt.reply); got != tt.want {
			t.Errorf("BusReply(%q) = %v, want %v", tt.reply, got, tt.want)
		}
	}
}

// An event the bus published carries no reply; a consumer's delivery
// always carries its ack subject.
func TestPublished(t *testing.T) {
	if !record.Published(&nats.Msg{Subject: "axis.evt.track.G22"}) {
		t.Error("an event without a reply refused")
	}
	if record.Published(&nats.Msg{Subject: "axis.evt.track.G22", Reply: "$JS.ACK.AXIS.mbox_H99.1.5.5.1.0"}) {
		t.Error("a consumer's delivery taken for an event")
	}
}
