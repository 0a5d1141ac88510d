package bustest

import (
	"encoding/json"
	"testing"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// OnTrackerNak calls fn with the record sequence of each message the
// bus's tracker asks for again (a nak: the server's MSG_NAKED advisory),
// until the test ends. nc must be allowed to subscribe to the server's
// advisories (the bus's own connection is).
func OnTrackerNak(t testing.TB, nc *nats.Conn, fn func(seq uint64)) {
	t.Helper()
	sub, err := nc.Subscribe(server.JSAdvisoryConsumerMsgNakPre+"."+record.Stream+"."+record.TrackerDurable, func(m *nats.Msg) {
		var adv server.JSConsumerDeliveryNakAdvisory
		if json.Unmarshal(m.Data, &adv) == nil {
			fn(adv.StreamSeq)
		}
	})
	if err != nil {
		t.Fatalf("subscribe to the tracker's naks: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
}
