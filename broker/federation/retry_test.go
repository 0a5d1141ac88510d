package federation_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The federation's quarantine entries are re-driven by the federation
// service: it runs the handler of the stream the message sits in again on
// the message as stored (never on what the entry says), removes the entry
// on success, and keeps it with the reason when the message is refused
// again.
func TestFederationQuarantineRetry(t *testing.T) {
	f := startFederation(t)
	ctx := ctxT(t)

	// A genuine envelope from Hà Nội reaches Đà Nẵng through DN's inbound
	// stream.
	e := envelope.New(hanoi, []string{danangDoJ}, "Liên tỉnh")
	if _, err := f.chn.Send(ctx, e); err != nil {
		t.Fatal(err)
	}
	receive(t, f.cdn, danangDoJ, 1)
	in, err := f.cdn.JetStream().Stream(ctx, federation.InStream)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := in.GetLastMsgForSubject(ctx, "axis.fedrelay.DN.HN.doc."+envelope.Token(danangDoJ)+"."+envelope.Token(hanoi))
	if err != nil {
		t.Fatal(err)
	}
	entry := func(data []byte) uint64 {
		m := nats.NewMsg(record.QuarantineSubject("federation"))
		m.Data = data
		m.Header.Set(record.HeaderAgency, "federation")
		m.Header.Set(record.HeaderReason, "bus HN not in the directory yet")
		m.Header.Set(record.HeaderOriginSubject, orig.Subject)
		m.Header.Set(federation.HeaderOriginStream, federation.InStream)
		m.Header.Set(record.HeaderOriginSeq, strconv.FormatUint(orig.Sequence, 10))
		m.Header.Set(record.HeaderEnvelope, e.ID)
		ack, err := f.cdn.JetStream().PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	// As if ingest had given up on it: a retry ingests it again (the record
	// keeps one copy: same message id) and removes the entry.
	seq := entry(orig.Data)
	if _, err := f.cdn.QuarantineRetry(ctx, strconv.FormatUint(seq, 10)); !errors.Is(err, broker.ErrFederationEntry) {
		t.Fatalf("broker retry of a federation entry: %v", err)
	}
	if err := federation.Retry(ctx, f.cdn, seq); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cdn.QuarantineEntry(ctx, strconv.FormatUint(seq, 10)); !errors.Is(err, broker.ErrNotQuarantined) {
		t.Fatalf("entry after retry: %v", err)
	}
	if n := recordCount(t, f.cdn, record.DocSubject(danangDoJ, hanoi)); n != 1 {
		t.Fatalf("%d copies in DN's record", n)
	}
	// An entry whose bytes are not the stored message's is not re-driven.
	tampered := entry([]byte(strings.Replace(string(orig.Data), "e", "f", 1)))
	if err := federation.Retry(ctx, f.cdn, tampered); !errors.Is(err, federation.ErrRetry) || !strings.Contains(err.Error(), broker.ErrNotInRecord.Error()) {
		t.Fatalf("retry of a tampered entry: %v", err)
	}

	// A forged envelope refused by DN stays refused, and in quarantine.
	forger, err := f.hn.CA.Issue(danang, "Giả mạo", signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hnID, err := federation.LoadBusIdentity(f.hn.Dir+"/home/federation", "HN", f.hn.CA)
	if err != nil {
		t.Fatal(err)
	}
	vnID, err := federation.LoadBusIdentity(f.vn.Dir+"/home/federation", "VN", f.vn.CA)
	if err != nil {
		t.Fatal(err)
	}
	fe := envelope.New(danang, []string{danangDoJ}, "Giả mạo")
	raw, err := forger.Seal(fe)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("axis.fedrelay.DN.doc." + envelope.Token(danangDoJ) + "." + envelope.Token(danang))
	m.Data = raw
	id := fe.ID + "." + envelope.Token(danangDoJ)
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Header.Set(record.HeaderEnvelope, fe.ID)
	var hops []federation.Hop
	for _, b := range []*federation.BusIdentity{hnID, vnID} {
		h, err := federation.AppendHop(m.Header, b, hops, time.Now(), fe.ID, id, raw)
		if err != nil {
			t.Fatal(err)
		}
		hops = append(hops, h)
	}
	if _, err := f.cvn.JetStream().PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	var refused broker.Quarantined
	eventually(t, "forged envelope in DN's quarantine", func() error {
		list, err := f.cdn.QuarantineList(ctx, "federation")
		if err != nil {
			return err
		}
		for _, q := range list {
			if q.Envelope == fe.ID {
				refused = q
				return nil
			}
		}
		return fmt.Errorf("not yet: %d entries", len(list))
	})
	if err := federation.Retry(ctx, f.cdn, refused.Seq); !errors.Is(err, federation.ErrRetry) || !strings.Contains(err.Error(), federation.ErrSpoofed.Error()) {
		t.Fatalf("retry of a forged envelope: %v", err)
	}
	if _, err := f.cdn.QuarantineEntry(ctx, strconv.FormatUint(refused.Seq, 10)); err != nil {
		t.Fatalf("the refused entry is gone: %v", err)
	}
	if n := recordCount(t, f.cdn, record.DocSubject(danangDoJ, danang)); n != 0 {
		t.Fatalf("forged envelope in DN's record (%d)", n)
	}
}

// A delivery count from a member's ack subject may be anything: every
// value gives a delay, the first ones spaced, the rest the longest.
func TestRetryDelay(t *testing.T) {
	for _, c := range []struct {
		attempt uint64
		want    time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {6, time.Minute}, {7, time.Minute},
		{1 << 63, time.Minute}, {^uint64(0), time.Minute},
	} {
		if got := federation.RetryDelay(c.attempt); got != c.want {
			t.Errorf("after delivery %d: %s, want %s", c.attempt, got, c.want)
		}
	}
}

// What the national refuses from a member sits in no stream of the
// national (it pulled it over the link): its quarantine entry is the only
// copy, and a retry re-drives the entry itself through the relay, which
// checks it again end to end. A tampered entry stays refused.
func TestFederationQuarantineRetryFromLink(t *testing.T) {
	f := startFederation(t)
	ctx := ctxT(t)
	e := envelope.New(hanoi, []string{danangDoJ}, "Liên tỉnh, bị giữ lại")
	if _, err := f.chn.Send(ctx, e); err != nil {
		t.Fatal(err)
	}
	receive(t, f.cdn, danangDoJ, 1)
	out, err := f.chn.JetStream().Stream(ctx, federation.OutStream)
	if err != nil {
		t.Fatal(err)
	}
	sent, err := out.GetLastMsgForSubject(ctx, "axis.fedout.DN.doc."+envelope.Token(danangDoJ)+"."+envelope.Token(hanoi))
	if err != nil {
		t.Fatal(err)
	}
	entryOf := func(m *jetstream.RawStreamMsg) broker.Quarantined {
		t.Helper()
		if err := f.vn.Fed.QuarantineFromLink(ctx, "HN", m, errors.New("held for the test")); err != nil {
			t.Fatal(err)
		}
		var got broker.Quarantined
		eventually(t, "the entry in the national's quarantine", func() error {
			list, err := f.cvn.QuarantineList(ctx, "federation")
			if err != nil {
				return err
			}
			for _, q := range list {
				if q.Envelope == e.ID && q.Seq > got.Seq {
					got = q
				}
			}
			if got.Seq == 0 {
				return fmt.Errorf("not yet: %d entries", len(list))
			}
			return nil
		})
		return got
	}

	q := entryOf(sent)
	if err := federation.Retry(ctx, f.cvn, q.Seq); err != nil {
		t.Fatalf("retry of a member's message from its entry: %v", err)
	}
	if _, err := f.cvn.QuarantineEntry(ctx, strconv.FormatUint(q.Seq, 10)); !errors.Is(err, broker.ErrNotQuarantined) {
		t.Fatalf("entry after retry: %v", err)
	}
	if n := recordCount(t, f.cdn, record.DocSubject(danangDoJ, hanoi)); n != 1 {
		t.Fatalf("%d copies in DN's record, want the one (the relay keeps its message id)", n)
	}

	// An entry as the national wrote one before entries named the link:
	// the national's own OutStream, the member's sequence (which the
	// national's OutStream does not hold), no message id.
	if _, err := record.WriteQuarantine(ctx, f.cvn.JetStream(), record.Quarantine{
		Box: record.FederationBox, Data: sent.Data, Reason: "refused by an older version", Header: sent.Header,
		OriginSubject: sent.Subject, OriginStream: federation.OutStream, OriginSeq: sent.Sequence + 100, Deliveries: 1,
		MsgID: record.FederationQuarantineMsgID("old-uplink-HN", sent.Sequence),
	}); err != nil {
		t.Fatal(err)
	}
	var old broker.Quarantined
	eventually(t, "the old entry in the national's quarantine", func() error {
		list, err := f.cvn.QuarantineList(ctx, "federation")
		if err != nil || len(list) != 1 || list[0].Envelope != e.ID {
			return fmt.Errorf("entries %+v: %v", list, err)
		}
		old = list[0]
		return nil
	})
	if err := federation.Retry(ctx, f.cvn, old.Seq); err != nil {
		t.Fatalf("retry of an entry written before entries named the link: %v", err)
	}
	if _, err := f.cvn.QuarantineEntry(ctx, strconv.FormatUint(old.Seq, 10)); !errors.Is(err, broker.ErrNotQuarantined) {
		t.Fatalf("old entry after retry: %v", err)
	}
	if n := recordCount(t, f.cdn, record.DocSubject(danangDoJ, hanoi)); n != 1 {
		t.Fatalf("%d copies in DN's record after the old entry's retry, want the one", n)
	}

	tampered := *sent
	tampered.Sequence++ // another entry: its id names the member's sequence
	tampered.Data = []byte(strings.Replace(string(sent.Data), "e", "f", 1))
	q = entryOf(&tampered)
	if err := federation.Retry(ctx, f.cvn, q.Seq); !errors.Is(err, federation.ErrRetry) {
		t.Fatalf("retry of a tampered entry: %v", err)
	}
	if _, err := f.cvn.QuarantineEntry(ctx, strconv.FormatUint(q.Seq, 10)); err != nil {
		t.Fatalf("the tampered entry is gone: %v", err)
	}
}

// A local agency's message holding the message id of a copy that comes
// over federation (the record deduplicates ids across the whole stream)
// must not make the copy pass for stored: the receiving bus refuses it
// into its quarantine, where the operator sees why.
func TestFederationCopyWhoseIDIsTakenIsQuarantined(t *testing.T) {
	f := startFederation(t)
	ctx := ctxT(t)
	e := envelope.New(hanoi, []string{danangDoJ}, "Bản sao liên tỉnh bị chiếm mã")
	_, js := f.dn.AgencyConnect(t, danang)
	squat := &nats.Msg{Subject: record.DocSubject(danangDoJ, danang), Data: []byte("chiếm chỗ"), Header: nats.Header{}}
	squat.Header.Set(jetstream.MsgIDHeader, record.DocMsgID(e.ID, danangDoJ))
	if _, err := js.PublishMsg(ctx, squat); err != nil {
		t.Fatal(err)
	}
	if _, err := f.chn.Send(ctx, e); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the copy in DN's federation quarantine", func() error {
		list, err := f.cdn.QuarantineList(ctx, "federation")
		if err != nil {
			return err
		}
		for _, q := range list {
			if q.Envelope == e.ID && strings.Contains(q.Reason, "message id") {
				t.Log(q.Reason)
				return nil
			}
		}
		return fmt.Errorf("not there: %+v", list)
	})
}
