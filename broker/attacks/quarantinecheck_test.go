package attacks_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
)

// H99 stores a status of its own (the last message of the record, so no
// document copy behind it) and floods the quarantine service with
// publish-rate checks of that sequence. The rate gate follows document
// copies only: a check waiting for its verdict would hold one of the
// service's few workers for seconds, and the victim's check of its own
// copy would wait behind them. Each of H99's checks is answered that its
// mailbox holds no such copy (or that it asks too much) without waiting
// for the gate, and the victim's copy is admitted.
func TestQuarantineCheckOfNoCopyHoldsNoWorker(t *testing.T) {
	a := newArena(t)
	id, _ := a.victimSend()
	seq := a.quarCopySeq(id, victimRecipient)
	nc, _ := a.raw(attacker)
	// A status of its own: the server stores anything on axis.status.*.<H99>.
	status := trackPublish(t, nc, record.StatusSubject(victimSender, attacker), []byte("junk"))

	const flood = 64
	inbox := "_INBOX_" + envelope.Token(attacker) + ".flood"
	answers, err := nc.SubscribeSync(inbox + ".>")
	if err != nil {
		t.Fatal(err)
	}
	for i := range flood {
		m := nats.NewMsg(record.QuarantineServiceSubject(attacker))
		m.Reply = inbox + "." + strconv.Itoa(i)
		m.Header.Set(record.HeaderOp, record.OpCheck)
		m.Header.Set(record.HeaderOriginSeq, strconv.FormatUint(status, 10))
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	vnc, _ := a.raw(victimRecipient)
	ans := quarRequest(t, vnc, record.QuarantineServiceSubject(victimRecipient),
		map[string]string{record.HeaderOp: record.OpCheck, record.HeaderOriginSeq: strconv.FormatUint(seq, 10)}, nil)
	if ans.Header.Get(record.HeaderVerdict) != record.VerdictAdmitted {
		t.Fatalf("the victim's check of its own copy: %v %q", ans.Header, ans.Data)
	}
	codes := map[string]int{}
	for range flood {
		m, err := answers.NextMsgWithContext(ctxT(t))
		if err != nil {
			t.Fatalf("answers to H99's checks: %v (%v so far)", err, codes)
		}
		code := m.Header.Get(record.HeaderError)
		switch {
		case code == record.CodeNotFound, code == record.CodeRateLimited,
			code == record.CodeUnavailable && strings.Contains(string(m.Data), "retry later") && !strings.Contains(string(m.Data), "not judged"):
			codes[code]++
		default:
			t.Fatalf("H99's check of its status #%d: %q %q %q (it waited for the gate)", status, code, m.Header.Get(record.HeaderVerdict), m.Data)
		}
	}
	b, _ := json.Marshal(codes)
	t.Logf("H99's checks: %s", b)
}
