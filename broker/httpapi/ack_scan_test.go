package httpapi_test

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
)

// Acknowledging an id the agency's mailbox does not hold answers 404
// without reading the mailbox: an agency that only uses HTTP never moves
// its consumer's ack floor, and a scan would read every copy it ever got.
// Counted as the stream reads of its mailbox the server asks for.
func TestAckOfUnknownIDReadsNoMailbox(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	var reads atomic.Int64
	mailbox := record.DocPrefix + envelope.Token(ngheAn) + "." // any sender's copies
	sub, err := e.client.Conn().Subscribe("$JS.API.STREAM.MSG.GET.>", func(m *nats.Msg) {
		if strings.Contains(string(m.Data), mailbox) {
			reads.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	const copies = 200
	for i := range copies {
		if _, err := e.client.Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Văn bản "+string(rune('a'+i%26)))); err != nil {
			t.Fatal(err)
		}
	}
	// The control: a listing reads the mailbox, and the count sees it.
	if r := e.do("GET", "/v1/inbox?limit=1", ngheAn, nil); r.StatusCode != http.StatusOK {
		t.Fatalf("inbox: %d %s", r.StatusCode, r.body)
	}
	e.client.Conn().Flush()
	if reads.Load() == 0 {
		t.Fatal("the listing read no mailbox copy: the count sees nothing")
	}
	reads.Store(0)
	for _, id := range []string{envelope.NewID(), e.sendDoc(govOffice, "Cho Sơn La", []string{sonLa})} {
		if r := e.do("POST", "/v1/inbox/"+id+"/ack", ngheAn, nil); r.StatusCode != http.StatusNotFound {
			t.Fatalf("ack of %s, not in the mailbox: %d %s", id, r.StatusCode, r.body)
		}
	}
	e.client.Conn().Flush()
	if n := reads.Load(); n != 0 {
		t.Fatalf("acks of ids not in a mailbox of %d copies read it %d times", copies, n)
	}
}
