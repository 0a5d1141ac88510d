package attacks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The quarantine is written by the bus alone, and a retry re-drives exactly
// the message that was quarantined (issue 13, item 5); the publish rate is
// enforced by the bus for every publisher.

// quarWaitViolation waits for the server to report a permission violation
// on subject to the attacker's connection.
func quarWaitViolation(t *testing.T, v *violations, subject string) {
	t.Helper()
	ctx := ctxT(t)
	for {
		select {
		case err := <-v.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subject) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no permission violation reported for %s", subject)
		}
	}
}

// quarEntries lists the whole quarantine, as the bus sees it.
func (a *arena) quarEntries() []broker.Quarantined {
	a.t.Helper()
	list, err := a.admin.QuarantineList(ctxT(a.t), "")
	if err != nil {
		a.t.Fatal(err)
	}
	return list
}

// quarRecordMsg reads the record message at seq.
func (a *arena) quarRecordMsg(seq uint64) *jetstream.RawStreamMsg {
	a.t.Helper()
	st, err := a.admin.JetStream().Stream(ctxT(a.t), record.Stream)
	if err != nil {
		a.t.Fatal(err)
	}
	m, err := st.GetMsg(ctxT(a.t), seq)
	if err != nil {
		a.t.Fatal(err)
	}
	return m
}

func (a *arena) quarLastSeq() uint64 {
	a.t.Helper()
	st, err := a.admin.JetStream().Stream(ctxT(a.t), record.Stream)
	if err != nil {
		a.t.Fatal(err)
	}
	info, err := st.Info(ctxT(a.t))
	if err != nil {
		a.t.Fatal(err)
	}
	return info.State.LastSeq
}

// quarCopySeq is the record sequence of recipient's copy of envelope id,
// once the tracker has recorded it.
func (a *arena) quarCopySeq(id, recipient string) uint64 {
	a.t.Helper()
	tr, err := a.admin.WaitState(ctxT(a.t), id, recipient, envelope.StateSent)
	if err != nil || tr.Seq == 0 {
		a.t.Fatalf("copy of %s for %s: %+v %v", id, recipient, tr, err)
	}
	return tr.Seq
}

// quarRequest sends a raw request to the quarantine service.
func quarRequest(t *testing.T, nc *nats.Conn, subject string, header map[string]string, body []byte) *nats.Msg {
	t.Helper()
	m := nats.NewMsg(subject)
	for k, v := range header {
		m.Header.Set(k, v)
	}
	m.Data = body
	a, err := nc.RequestMsgWithContext(ctxT(t), m)
	if err != nil {
		t.Fatalf("request on %s: %v", subject, err)
	}
	return a
}

// H99 writes straight into the quarantine, its own box, its victim's box
// and the federation's, with headers pointing a retry at H14's mailbox
// and G22 as sender: the server refuses every publish, and nothing lands.
func TestQuarantineInjectionRefused(t *testing.T) {
	a := newArena(t)
	id, _ := a.victimSend()
	nc, v := a.raw(attacker)
	forged := []byte(`{"id":"` + envelope.NewID() + `","kind":"document","from":"` + victimSender + `","to":["` + victimRecipient + `"],"subject":"Giả mạo"}`)
	for _, box := range []string{attacker, victimRecipient, broker.FederationQuarantine} {
		m := nats.NewMsg(record.QuarantineSubject(box))
		m.Data = forged
		m.Header.Set(record.HeaderOriginSubject, record.DocSubject(victimRecipient, victimSender))
		m.Header.Set(record.HeaderAgency, victimRecipient)
		m.Header.Set(record.HeaderEnvelope, id)
		m.Header.Set(record.HeaderOriginSeq, strconv.FormatUint(a.quarCopySeq(id, victimRecipient), 10))
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
		quarWaitViolation(t, v, m.Subject)
	}
	if list := a.quarEntries(); len(list) != 0 {
		t.Fatalf("quarantine holds %+v", list)
	}

	// Entries an agency wrote before it lost that right (credentials issued
	// by an earlier version) still cannot re-drive anything but the record:
	// neither the forged document nor, through its own box, the victim's.
	before := a.quarLastSeq()
	for _, data := range [][]byte{forged, a.quarRecordMsg(a.quarCopySeq(id, victimRecipient)).Data} {
		m := nats.NewMsg(record.QuarantineSubject(attacker))
		m.Data = data
		m.Header.Set(record.HeaderOriginSubject, record.DocSubject(victimRecipient, victimSender))
		m.Header.Set(record.HeaderAgency, victimRecipient)
		m.Header.Set(record.HeaderOriginSeq, strconv.FormatUint(a.quarCopySeq(id, victimRecipient), 10))
		ack, err := a.admin.JetStream().PublishMsg(ctxT(t), m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.admin.QuarantineRetry(ctxT(t), strconv.FormatUint(ack.Sequence, 10)); !errors.Is(err, broker.ErrNotInRecord) {
			t.Fatalf("retry of an agency-written entry: %v", err)
		}
	}
	if after := a.quarLastSeq(); after != before {
		t.Fatalf("the record grew from #%d to #%d", before, after)
	}
}

// H99 asks the bus to quarantine (and to judge) H14's copy of G22's
// document, and asks in H14's name: the bus answers that H99's mailbox
// holds no such copy, the server refuses the second, nothing is written.
func TestQuarantineRequestForAnotherMailbox(t *testing.T) {
	a := newArena(t)
	id, _ := a.victimSend()
	seq := strconv.FormatUint(a.quarCopySeq(id, victimRecipient), 10)
	nc, v := a.raw(attacker)
	own := record.QuarantineServiceSubject(attacker)
	for _, op := range []string{"quarantine", "check"} {
		body := []byte("mất dữ liệu")
		if op == "check" {
			body = nil
		}
		ans := quarRequest(t, nc, own, map[string]string{"Docaxis-Op": op, record.HeaderOriginSeq: seq}, body)
		if ans.Header.Get("Docaxis-Error") != "not-found" || ans.Header.Get("Docaxis-Verdict") != "" {
			t.Fatalf("%s of the victim's copy: %v %q", op, ans.Header, ans.Data)
		}
	}
	m := nats.NewMsg(record.QuarantineServiceSubject(victimRecipient))
	m.Header.Set(record.HeaderOriginSeq, seq)
	m.Data = []byte("mất dữ liệu")
	m.Reply = nats.NewInbox()
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	quarWaitViolation(t, v, m.Subject)
	if list := a.quarEntries(); len(list) != 0 {
		t.Fatalf("quarantine holds %+v", list)
	}
	// Through the library the same: refused by the bus.
	err := a.client(attacker).Quarantine(ctxT(t), attacker, quarStored{a.quarRecordMsg(a.quarCopySeq(id, victimRecipient))},
		&jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: a.quarCopySeq(id, victimRecipient)}}, "x")
	if !errors.Is(err, broker.ErrQuarantineRefused) {
		t.Fatalf("library request for the victim's copy: %v", err)
	}
}

// Malformed and oversized requests are refused with an error naming the
// problem, and nothing is written; a request whose answer would go to
// another agency's inbox is not answered at all; asking many times for
// one's own copy writes one entry.
func TestQuarantineMalformedRequests(t *testing.T) {
	a := newArena(t)
	// A copy in H99's own mailbox, sent to it by H41.
	res, err := a.client(attacker2).Send(ctxT(t), envelope.New(attacker2, []string{attacker}, "Gửi H99"))
	if err != nil {
		t.Fatal(err)
	}
	own := strconv.FormatUint(a.quarCopySeq(res.ID, attacker), 10)
	nc, _ := a.raw(attacker)
	subject := record.QuarantineServiceSubject(attacker)
	tests := []struct {
		name   string
		header map[string]string
		body   []byte
		want   string
	}{
		{"no sequence", nil, []byte("lý do"), "Docaxis-Origin-Seq"},
		{"sequence zero", map[string]string{record.HeaderOriginSeq: "0"}, []byte("lý do"), "Docaxis-Origin-Seq"},
		{"sequence not a number", map[string]string{record.HeaderOriginSeq: own + "; DROP"}, []byte("lý do"), "Docaxis-Origin-Seq"},
		{"no reason", map[string]string{record.HeaderOriginSeq: own}, nil, "no reason"},
		{"reason of 4 KiB", map[string]string{record.HeaderOriginSeq: own}, bytes.Repeat([]byte("a"), 4096), "at most"},
		{"reason of 512 KiB", map[string]string{record.HeaderOriginSeq: own}, bytes.Repeat([]byte("a"), 512<<10), "at most"},
		{"reason not UTF-8", map[string]string{record.HeaderOriginSeq: own}, []byte{0xff, 0xfe, 'x'}, "UTF-8"},
		{"header injection in the reason", map[string]string{record.HeaderOriginSeq: own}, []byte("x\r\nDocaxis-Origin-Subject: axis.doc.a.b"), "control"},
		{"delivery count not a number", map[string]string{record.HeaderOriginSeq: own, record.HeaderDeliveries: "-1"}, []byte("x"), "Docaxis-Deliveries"},
		{"unknown operation", map[string]string{record.HeaderOriginSeq: own, "Docaxis-Op": "delete"}, []byte("x"), "Docaxis-Op"},
		{"check with a body", map[string]string{record.HeaderOriginSeq: own, "Docaxis-Op": "check"}, []byte("x"), "unexpected"},
	}
	for _, tc := range tests {
		ans := quarRequest(t, nc, subject, tc.header, tc.body)
		if ans.Header.Get("Docaxis-Error") != "bad-request" || !strings.Contains(string(ans.Data), tc.want) {
			t.Errorf("%s: answer %v %q", tc.name, ans.Header, ans.Data)
		}
	}
	// Answer into H14's inbox: dropped. The service reads requests in
	// order, so once the next request is answered the first was handled.
	victimNC, _ := a.raw(victimRecipient)
	sub, err := victimNC.SubscribeSync("_INBOX_" + envelope.Token(victimRecipient) + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := victimNC.Flush(); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subject)
	m.Reply = "_INBOX_" + envelope.Token(victimRecipient) + ".stolen"
	m.Header.Set("Docaxis-Op", "check")
	m.Header.Set(record.HeaderOriginSeq, own)
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	if list := a.quarEntries(); len(list) != 0 {
		t.Fatalf("malformed requests wrote %+v", list)
	}
	// Asking three times for its own copy: one entry.
	for i := range 3 {
		ans := quarRequest(t, nc, subject, map[string]string{record.HeaderOriginSeq: own, record.HeaderDeliveries: "2"}, []byte("ứng dụng lỗi"))
		if ans.Header.Get("Docaxis-Quarantine-Seq") == "" || (i > 0) != (ans.Header.Get("Docaxis-Duplicate") == "true") {
			t.Fatalf("request %d: %v %q", i, ans.Header, ans.Data)
		}
	}
	if err := victimNC.Flush(); err != nil {
		t.Fatal(err)
	}
	if msg, err := sub.NextMsg(0); err == nil {
		t.Fatalf("the bus answered into the victim's inbox: %v %q", msg.Header, msg.Data)
	}
	list := a.quarEntries()
	if len(list) != 1 || list[0].Agency != attacker || list[0].Envelope != res.ID || list[0].Subject != record.DocSubject(attacker, attacker2) {
		t.Fatalf("quarantine %+v", list)
	}
}

// A real envelope its recipient's application refused is quarantined by
// the bus at the recipient's request, and a retry stores exactly the same
// bytes on exactly the same subject; the recipient then gets it, verified.
func TestQuarantineRetryRedrivesExactly(t *testing.T) {
	a := newArena(t)
	id, _ := a.victimSend()
	seq := a.quarCopySeq(id, victimRecipient)
	orig := a.quarRecordMsg(seq)
	rcpt := a.client(victimRecipient)
	mb, err := rcpt.Mailbox(ctxT(t), victimRecipient)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Fetch(ctxT(t), 1, time.Second, func(context.Context, *broker.Delivery) error {
		return errors.Join(broker.ErrReject, errors.New("hệ thống văn thư đang bảo trì"))
	}); err != nil {
		t.Fatal(err)
	}
	list := a.quarEntries()
	if len(list) != 1 || list[0].OriginSeq != seq || list[0].Subject != orig.Subject || list[0].Agency != victimRecipient {
		t.Fatalf("quarantine %+v", list)
	}
	if _, err := a.admin.QuarantineRetry(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	again := a.quarRecordMsg(a.quarLastSeq())
	if again.Sequence == seq || again.Subject != orig.Subject || !bytes.Equal(again.Data, orig.Data) {
		t.Fatalf("re-driven #%d on %s, want the bytes of #%d on %s", again.Sequence, again.Subject, seq, orig.Subject)
	}
	var got []broker.Outcome
	mb, err = rcpt.Mailbox(ctxT(t), victimRecipient, broker.OnOutcome(func(o broker.Outcome) { got = append(got, o) }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Fetch(ctxT(t), 0, time.Second, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Verified || got[0].ID != id || got[0].From != victimSender {
		t.Fatalf("after retry: %+v", got)
	}
}

// H99 publishes signed envelopes to H14 as fast as a raw connection goes,
// far over the bus's rate: H14's mailbox and its HTTP inbox get no more of
// them than the rate allows (judged by the time the bus recorded each),
// the rest is refused and quarantined by the bus, and G22's document to
// H14 is delivered as usual.
func TestPublishRateRawFlood(t *testing.T) {
	a := newArena(t)
	const rate = 2.0
	l := broker.DefaultLimits
	l.PublishRate = rate
	if err := a.bus.Service.Client.SetLimits(ctxT(t), l); err != nil {
		t.Fatal(err)
	}
	rcpt := a.client(victimRecipient)
	for _, c := range []*broker.Client{rcpt, a.admin} {
		for c.Limits().PublishRate != rate {
			select {
			case <-ctxT(t).Done():
				t.Fatal("the rate never reached the recipient's side")
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	nc, _ := a.raw(attacker)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	signer := a.bus.Identity(attacker)
	var seqs []uint64
	flood := map[string]bool{}
	var lastID string
	for range 40 {
		e := envelope.New(attacker, []string{victimRecipient}, "Dồn dập")
		raw, err := signer.Seal(e)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(record.DocSubject(victimRecipient, attacker))
		m.Data = raw
		m.Header.Set(jetstream.MsgIDHeader, e.ID+"."+envelope.Token(victimRecipient))
		ack, err := js.PublishMsg(ctxT(t), m)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
		flood[e.ID] = true
		lastID = e.ID
	}
	first, last := a.quarRecordMsg(seqs[0]).Time, a.quarRecordMsg(seqs[len(seqs)-1]).Time
	bound := int(2*rate + rate*last.Sub(first).Seconds())
	id, _ := a.victimSend()

	// HTTP inbox of H14.
	resp, body := a.do(victimRecipient, "GET", "/v1/inbox?limit=500", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("inbox: %d %s", resp.StatusCode, body)
	}
	var inbox struct {
		Envelopes []struct {
			ID string `json:"id"`
		} `json:"envelopes"`
	}
	if err := json.Unmarshal(body, &inbox); err != nil {
		t.Fatal(err)
	}
	listed, victimListed := 0, false
	for _, e := range inbox.Envelopes {
		victimListed = victimListed || e.ID == id
		if flood[e.ID] {
			listed++
		}
	}
	if !victimListed || listed < 1 || listed > bound {
		t.Fatalf("HTTP inbox lists %d of the flood (at most %d) and G22's document: %v", listed, bound, victimListed)
	}
	if resp, body := a.do(victimRecipient, "POST", "/v1/inbox/"+lastID+"/ack", nil); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), "publish rate") {
		t.Fatalf("acknowledging a refused copy: %d %s", resp.StatusCode, body)
	}

	// H14's mailbox.
	var outs []broker.Outcome
	mb, err := rcpt.Mailbox(ctxT(t), victimRecipient, broker.OnOutcome(func(o broker.Outcome) { outs = append(outs, o) }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.Fetch(ctxT(t), 0, time.Second, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
		t.Fatal(err)
	}
	handed, refused, victimHanded := 0, 0, false
	for _, o := range outs {
		switch {
		case o.ID == id:
			victimHanded = o.Verified
		case o.Verified:
			handed++
		case o.Quarantined && strings.Contains(o.Error, broker.ErrRateLimited.Error()):
			refused++
		default:
			t.Fatalf("outcome %+v", o)
		}
	}
	if !victimHanded || handed < 1 || handed > bound || handed+refused != len(seqs) {
		t.Fatalf("mailbox: G22's handed over: %v; of the flood %d handed (at most %d), %d refused of %d", victimHanded, handed, bound, refused, len(seqs))
	}
	if _, err := a.admin.WaitState(ctxT(t), id, victimRecipient, envelope.StateDelivered); err != nil {
		t.Fatal(err)
	}
	if n := len(a.quarEntries()); n != refused {
		t.Fatalf("%d quarantined, %d refused", n, refused)
	}
}

// quarStored gives a record message the shape a mailbox hands over.
type quarStored struct{ m *jetstream.RawStreamMsg }

func (s quarStored) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: s.m.Sequence}}, nil
}
func (s quarStored) Data() []byte                     { return s.m.Data }
func (s quarStored) Headers() nats.Header             { return s.m.Header }
func (s quarStored) Subject() string                  { return s.m.Subject }
func (s quarStored) Reply() string                    { return "" }
func (s quarStored) Ack() error                       { return nil }
func (s quarStored) DoubleAck(context.Context) error  { return nil }
func (s quarStored) Nak() error                       { return nil }
func (s quarStored) NakWithDelay(time.Duration) error { return nil }
func (s quarStored) InProgress() error                { return nil }
func (s quarStored) Term() error                      { return nil }
func (s quarStored) TermWithReason(string) error      { return nil }

// H99 asks the bus, with its own credentials, again and again for the
// publish-rate verdict on a copy of another mailbox, one old enough that
// the bus must read the record to tell whose it is: past the per-agency
// rate it is answered "rate limited" without a read, and the victim still
// gets the verdict on its own copy.
func TestQuarantineCheckFloodRateLimited(t *testing.T) {
	a := newArena(t)
	id, _ := a.victimSend()
	seq := a.quarCopySeq(id, victimRecipient)
	a.bus.Restart() // the gate's new term holds no verdict of the copy in memory
	check := func(nc *nats.Conn, code string) *nats.Msg {
		return quarRequest(t, nc, record.QuarantineServiceSubject(code),
			map[string]string{record.HeaderOp: record.OpCheck, record.HeaderOriginSeq: strconv.FormatUint(seq, 10)}, nil)
	}
	nc, _ := a.raw(attacker)
	limited, notFound := 0, 0
	for range 150 {
		ans := check(nc, attacker)
		switch code := ans.Header.Get(record.HeaderError); code {
		case record.CodeRateLimited:
			limited++
		case record.CodeNotFound:
			notFound++
		default:
			t.Fatalf("the attacker got %q %q about another mailbox's copy", code, ans.Header.Get(record.HeaderVerdict))
		}
	}
	if limited == 0 {
		t.Fatalf("150 checks about another mailbox's copy were each read from the record (%d not found)", notFound)
	}
	vnc, _ := a.raw(victimRecipient)
	if ans := check(vnc, victimRecipient); ans.Header.Get(record.HeaderVerdict) != record.VerdictAdmitted {
		t.Fatalf("the victim's own check: %v %q", ans.Header, ans.Data)
	}
}

// H99 asks for the verdict on copies past the record's end, which the
// bus would wait for holding one of its few workers: each is answered at
// once that there is no such copy, and the victim's check still is.
func TestQuarantineCheckPastTheRecord(t *testing.T) {
	a := newArena(t)
	id, _ := a.victimSend()
	seq := a.quarCopySeq(id, victimRecipient)
	nc, _ := a.raw(attacker)
	for i := range 40 {
		future := a.quarLastSeq() + 1_000_000 + uint64(i)
		ans := quarRequest(t, nc, record.QuarantineServiceSubject(attacker),
			map[string]string{record.HeaderOp: record.OpCheck, record.HeaderOriginSeq: strconv.FormatUint(future, 10)}, nil)
		if code := ans.Header.Get(record.HeaderError); code != record.CodeNotFound {
			t.Fatalf("check of #%d past the record: %q %q, want %s at once", future, code, ans.Data, record.CodeNotFound)
		}
	}
	vnc, _ := a.raw(victimRecipient)
	ans := quarRequest(t, vnc, record.QuarantineServiceSubject(victimRecipient),
		map[string]string{record.HeaderOp: record.OpCheck, record.HeaderOriginSeq: strconv.FormatUint(seq, 10)}, nil)
	if ans.Header.Get(record.HeaderVerdict) != record.VerdictAdmitted {
		t.Fatalf("the victim's own check: %v %q", ans.Header, ans.Data)
	}
}
