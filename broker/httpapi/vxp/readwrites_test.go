package vxp_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
)

// A document system acknowledges a document (updateStatus done, or a
// status 01 sent with sendEdoc) and answers with its status at once, as
// the SDK lets it. The status is judged from delivered even when the bus's
// tracker lags: here it is stopped while the acknowledgement is made and
// started again 300 ms later.
func TestStatusRightAfterTheAcknowledgement(t *testing.T) {
	rejection := func(t *testing.T) []byte {
		return testdata(t, "status_rejection_02.edxml", sampleDoc, edocDocID, provincial, edocTo, native, edocFrom)
	}
	statusHdr := map[string]any{"from": "sys.b", "servicetype": "eDoc", "messagetype": "status"}
	for _, tc := range []struct {
		name string
		ack  func(t *testing.T, bb *sdk, id string) map[string]any
	}{
		{"updateStatus done", func(t *testing.T, bb *sdk, id string) map[string]any {
			return bb.call("updateStatus", map[string]any{"status": "done", "docId": id}, []byte("{}"))
		}},
		{"sendEdoc status 01", func(t *testing.T, bb *sdk, id string) map[string]any {
			received := strings.Replace(string(rejection(t)), "<edXML:StatusCode>02</edXML:StatusCode>", "<edXML:StatusCode>01</edXML:StatusCode>", 1)
			return bb.sendEdoc(statusHdr, []byte(received))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBench(t, false)
			a := b.sdk("sys.a", b.addSystem("sys.a", edocFrom))
			bb := b.sdk("sys.b", b.addSystem("sys.b", edocTo))
			res := mustOK(t, "sendEdoc", a.sendEdoc(map[string]any{"from": edocFrom, "servicetype": "eDoc", "messagetype": "edoc"}, testdata(t, "edoc.edxml")))
			id := fmt.Sprint(res["DocId"])
			waitState(t, b.admin, id, edocTo, envelope.StateSent)
			if items := list(mustOK(t, "getReceivedEdocList", bb.call("getReceivedEdocList", listEdoc, nil))); len(items) != 1 {
				t.Fatalf("received list: %v", items)
			}

			restarted := b.bus.LagTracker(t, 300*time.Millisecond)
			mustOK(t, tc.name, tc.ack(t, bb, id))
			mustOK(t, "sendEdoc status 02", bb.sendEdoc(statusHdr, rejection(t)))
			restarted()
			waitState(t, b.admin, id, edocTo, envelope.StateRejected)
		})
	}
}
