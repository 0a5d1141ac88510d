package broker_test

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A message quarantined because the sender's CA was not trusted yet is
// re-driven after the fix and then delivered.
func TestQuarantineListAndRetry(t *testing.T) {
	bus := threeAgencies(t)
	other, err := signing.NewCA("tỉnh khác CA", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := other.Issue(govOffice, "VPCP (CA mới)", signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := envelope.New(govOffice, []string{ngheAn}, "Chứng thư chưa tin cậy")
	raw, err := id.Seal(e)
	if err != nil {
		t.Fatal(err)
	}
	c := bus.Client(ngheAn)
	publishRaw(t, c, record.DocSubject(ngheAn, govOffice), raw)
	outs := receiveAll(t, c, ngheAn)
	if len(outs) != 1 || !outs[0].Quarantined {
		t.Fatalf("outcomes %+v", outs)
	}
	list, err := c.QuarantineList(ctxT(t), ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Envelope != e.ID || !strings.Contains(list[0].Reason, "not trusted") || list[0].Deliveries != 1 || list[0].Agency != ngheAn {
		t.Fatalf("list = %+v", list)
	}
	if _, err := c.QuarantineRetry(ctxT(t), "424242"); !errors.Is(err, broker.ErrNotQuarantined) {
		t.Fatalf("retry of a missing seq: %v", err)
	}
	// The fix: the bus trusts the new CA.
	bus.Trust.AddRoot(other.Cert)
	if _, err := c.QuarantineRetry(ctxT(t), e.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := c.QuarantineList(ctxT(t), ""); len(list) != 0 {
		t.Fatalf("still quarantined: %+v", list)
	}
	outs = receiveAll(t, c, ngheAn)
	if len(outs) != 1 || !outs[0].Verified || outs[0].ID != e.ID {
		t.Fatalf("after retry: %+v", outs)
	}
	waitState(t, c, e.ID, ngheAn, envelope.StateDelivered)
}

// recordMsg reads the record message at seq.
func recordMsg(t *testing.T, c *broker.Client, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	st, err := c.JetStream().Stream(ctxT(t), record.Stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctxT(t), seq)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func lastSeq(t *testing.T, c *broker.Client, stream string) uint64 {
	t.Helper()
	st, err := c.JetStream().Stream(ctxT(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// With agency credentials the mailbox cannot write the quarantine; it asks
// the bus, which writes the entry from the record: every header says what
// the record says. A retry stores the very same bytes again on the very
// same subject.
func TestQuarantineWrittenByTheBus(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	ctx := ctxT(t)
	res, err := bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Ứng dụng từ chối"))
	if err != nil {
		t.Fatal(err)
	}
	rcpt := bus.Client(ngheAn)
	mb, err := rcpt.Mailbox(ctx, ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	var seq uint64
	if _, err := mb.Fetch(ctx, 1, time.Second, func(_ context.Context, d *broker.Delivery) error {
		seq = d.Seq
		return errors.Join(broker.ErrReject, errors.New("sai thẩm quyền\r\ngiả mạo: header"))
	}); err != nil {
		t.Fatal(err)
	}
	admin := bus.Client()
	list, err := admin.QuarantineList(ctx, ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	orig := recordMsg(t, admin, seq)
	if len(list) != 1 {
		t.Fatalf("list = %+v", list)
	}
	q := list[0]
	if q.OriginSeq != seq || q.Subject != orig.Subject || q.Agency != ngheAn || q.Envelope != res.ID || q.Deliveries != 1 ||
		!strings.Contains(q.Reason, "sai thẩm quyền  giả mạo") || q.Size != len(orig.Data) {
		t.Fatalf("entry %+v, record #%d on %s", q, seq, orig.Subject)
	}
	// Asking again is a no-op: one entry per (copy, agency).
	if err := rcpt.Quarantine(ctx, ngheAn, storedAsMsg(orig), &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: seq}, NumDelivered: 2}, "again"); err != nil {
		t.Fatal(err)
	}
	if list, _ := admin.QuarantineList(ctx, ""); len(list) != 1 {
		t.Fatalf("quarantined twice: %+v", list)
	}
	before := lastSeq(t, admin, record.Stream)
	got, err := admin.QuarantineRetry(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != q.Seq {
		t.Fatalf("retried %+v, want seq %d", got, q.Seq)
	}
	again := recordMsg(t, admin, lastSeq(t, admin, record.Stream))
	if again.Sequence <= before || again.Subject != orig.Subject || !bytes.Equal(again.Data, orig.Data) {
		t.Fatalf("re-driven #%d on %s (%d bytes), want a new copy of #%d on %s", again.Sequence, again.Subject, len(again.Data), seq, orig.Subject)
	}
	outs := receiveAll(t, rcpt, ngheAn)
	if len(outs) != 1 || !outs[0].Verified || outs[0].ID != res.ID {
		t.Fatalf("after retry: %+v", outs)
	}
}

// storedAsMsg gives a record message the shape the mailbox hands over.
func storedAsMsg(m *jetstream.RawStreamMsg) jetstream.Msg { return rawMsg{m} }

type rawMsg struct{ *jetstream.RawStreamMsg }

func (m rawMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: m.Sequence}}, nil
}
func (m rawMsg) Data() []byte                     { return m.RawStreamMsg.Data }
func (m rawMsg) Headers() nats.Header             { return m.Header }
func (m rawMsg) Subject() string                  { return m.RawStreamMsg.Subject }
func (m rawMsg) Reply() string                    { return "" }
func (m rawMsg) Ack() error                       { return nil }
func (m rawMsg) DoubleAck(context.Context) error  { return nil }
func (m rawMsg) Nak() error                       { return nil }
func (m rawMsg) NakWithDelay(time.Duration) error { return nil }
func (m rawMsg) InProgress() error                { return nil }
func (m rawMsg) Term() error                      { return nil }
func (m rawMsg) TermWithReason(string) error      { return nil }

// Entries that do not point to a copy of their agency's mailbox holding
// the same bytes (written by an agency before the quarantine was the
// bus's) are refused by retry, nothing is re-published, and drop removes
// them.
func TestQuarantineRetryOnlyFromTheRecord(t *testing.T) {
	bus := threeAgencies(t)
	ctx := ctxT(t)
	admin := bus.Client()
	res, err := bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{sonLa}, "Bản thật"))
	if err != nil {
		t.Fatal(err)
	}
	tr := waitState(t, admin, res.ID, sonLa, envelope.StateSent)
	real := recordMsg(t, admin, tr.Seq)
	forged := []byte(`{"id":"` + envelope.NewID() + `","from":"` + govOffice + `","to":["` + sonLa + `"],"subject":"giả"}`)
	legacy := func(agency string, data []byte, hdr ...string) uint64 {
		m := nats.NewMsg(record.QuarantineSubject(agency))
		m.Data = data
		for i := 0; i+1 < len(hdr); i += 2 {
			m.Header.Set(hdr[i], hdr[i+1])
		}
		ack, err := admin.JetStream().PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	seqOf := func(n uint64) string { return strconv.FormatUint(n, 10) }
	cases := []struct {
		name string
		seq  uint64
	}{
		{"no origin seq", legacy(ngheAn, forged, record.HeaderOriginSubject, real.Subject, record.HeaderAgency, sonLa)},
		{"origin seq not a number", legacy(ngheAn, forged, record.HeaderOriginSeq, "x1")},
		{"another agency's copy", legacy(ngheAn, real.Data, record.HeaderOriginSeq, seqOf(real.Sequence), record.HeaderOriginSubject, real.Subject)},
		{"other bytes than the record", legacy(sonLa, forged, record.HeaderOriginSeq, seqOf(real.Sequence), record.HeaderOriginSubject, real.Subject)},
		{"forged origin subject", legacy(sonLa, real.Data, record.HeaderOriginSeq, seqOf(real.Sequence), record.HeaderOriginSubject, record.DocSubject(sonLa, ngheAn))},
		{"past the record", legacy(sonLa, real.Data, record.HeaderOriginSeq, "99999")},
	}
	before := lastSeq(t, admin, record.Stream)
	for _, tc := range cases {
		if _, err := admin.QuarantineRetry(ctx, seqOf(tc.seq)); !errors.Is(err, broker.ErrNotInRecord) {
			t.Errorf("%s: retry: %v, want ErrNotInRecord", tc.name, err)
		}
	}
	if after := lastSeq(t, admin, record.Stream); after != before {
		t.Fatalf("the record grew from #%d to #%d", before, after)
	}
	for _, tc := range cases {
		if _, err := admin.QuarantineDrop(ctx, seqOf(tc.seq)); err != nil {
			t.Fatalf("%s: drop: %v", tc.name, err)
		}
	}
	if list, _ := admin.QuarantineList(ctx, ""); len(list) != 0 {
		t.Fatalf("left after drop: %+v", list)
	}
	if _, err := admin.QuarantineDrop(ctx, seqOf(cases[0].seq)); !errors.Is(err, broker.ErrNotQuarantined) {
		t.Fatalf("drop twice: %v", err)
	}
}

// By envelope id a retry needs exactly one entry; with several it asks for
// the quarantine seq, which then works.
func TestQuarantineRetryAmbiguousEnvelope(t *testing.T) {
	bus := threeAgencies(t)
	ctx := ctxT(t)
	admin := bus.Client()
	res, err := bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{ngheAn, sonLa}, "Hai bản cùng bị từ chối"))
	if err != nil {
		t.Fatal(err)
	}
	reject := func(context.Context, *broker.Delivery) error {
		return errors.Join(broker.ErrReject, errors.New("không nhận"))
	}
	for _, code := range []string{ngheAn, sonLa} {
		mb, err := bus.Client(code).Mailbox(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mb.Fetch(ctx, 1, time.Second, reject); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.QuarantineRetry(ctx, res.ID); !errors.Is(err, broker.ErrAmbiguous) {
		t.Fatalf("retry by id with two entries: %v", err)
	}
	list, err := admin.QuarantineList(ctx, sonLa)
	if err != nil || len(list) != 1 {
		t.Fatalf("list %+v %v", list, err)
	}
	if _, err := admin.QuarantineRetry(ctx, strconv.FormatUint(list[0].Seq, 10)); err != nil {
		t.Fatal(err)
	}
	if outs := receiveAll(t, bus.Client(sonLa), sonLa); len(outs) != 1 || !outs[0].Verified {
		t.Fatalf("after retry: %+v", outs)
	}
	if _, err := admin.QuarantineRetry(ctx, res.ID); err != nil {
		t.Fatalf("retry by id once one entry is left: %v", err)
	}
}

// A listing describes entries by their headers: it does not carry their
// bytes, which an agency publishing over the rate chooses (a MiB each).
func TestQuarantineListCarriesNoEntryBytes(t *testing.T) {
	bus := threeAgencies(t)
	ctx := ctxT(t)
	admin := bus.Service.Client
	big := bytes.Repeat([]byte("x"), 512<<10)
	for i := range 4 {
		if _, err := record.WriteQuarantine(ctx, admin.JetStream(), record.Quarantine{Box: ngheAn, Data: big, Reason: "test",
			OriginSubject: record.DocSubject(ngheAn, govOffice), OriginSeq: uint64(i + 1), MsgID: record.QuarantineMsgID(uint64(i+1), ngheAn)}); err != nil {
			t.Fatal(err)
		}
	}
	nc := admin.Conn()
	before := nc.Stats().InBytes
	list, err := admin.QuarantineList(ctx, ngheAn)
	if err != nil {
		t.Fatal(err)
	}
	read := nc.Stats().InBytes - before
	if len(list) != 4 || list[0].Size != len(big) || list[0].Agency != ngheAn {
		t.Fatalf("list = %+v", list)
	}
	if read >= uint64(len(big)) {
		t.Fatalf("listing 4 entries of %d bytes read %d bytes", len(big), read)
	}
	t.Logf("listing 4 entries of %d bytes read %d bytes", len(big), read)
}
