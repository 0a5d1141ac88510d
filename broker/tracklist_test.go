package broker_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
)

// TestDocumentIndex lists an agency's documents from the keys, newest
// first, and reads one document's pairs on demand.
func TestDocumentIndex(t *testing.T) {
	bus := bustest.Start(t)
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	bus.AddAgency(sonLa, "UBND tỉnh Sơn La")
	ctx := ctxT(t)
	admin := bus.Service.Client
	var sent []string
	for i := range 3 {
		res, err := bus.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{ngheAn, sonLa}, fmt.Sprintf("Công văn %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, res.ID)
	}
	back, err := bus.Client(ngheAn).Send(ctx, envelope.New(ngheAn, []string{govOffice}, "Trả lời"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range sent {
		for _, who := range []string{ngheAn, sonLa} {
			waitState(t, admin, id, who, envelope.StateSent)
		}
	}
	waitState(t, admin, back.ID, govOffice, envelope.StateSent)

	ids := func(refs []broker.DocumentRef) (out []string) {
		for _, r := range refs {
			out = append(out, r.ID+"/"+r.Role)
		}
		return out
	}
	newest := func(list []string, role string) (out []string) {
		for _, id := range slices.Backward(list) {
			out = append(out, id+"/"+role)
		}
		return out
	}
	for _, tc := range []struct {
		agency string
		box    broker.Box
		want   []string
	}{
		{govOffice, broker.BoxSent, newest(sent, "sender")},
		{govOffice, broker.BoxReceived, []string{back.ID + "/recipient"}},
		{govOffice, broker.BoxAll, append([]string{back.ID + "/recipient"}, newest(sent, "sender")...)},
		{sonLa, broker.BoxAll, newest(sent, "recipient")},
		{sonLa, broker.BoxSent, nil},
	} {
		refs, err := admin.DocumentIndex(ctx, tc.agency, tc.box)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(refs); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s box %s = %v, want %v", tc.agency, tc.box, got, tc.want)
		}
	}
	if _, err := admin.DocumentIndex(ctx, govOffice, "trash"); err == nil {
		t.Error("box trash listed")
	}

	refs, _ := admin.DocumentIndex(ctx, govOffice, broker.BoxSent)
	pairs, err := admin.LoadDocument(ctx, refs[0])
	if err != nil || refs[0].Pairs() != 2 || len(pairs) != 2 || pairs[0].Recipient != sonLa || pairs[1].Recipient != ngheAn || pairs[0].Envelope != sent[2] {
		t.Fatalf("sender's pairs of %s = %+v %v", refs[0].ID, pairs, err)
	}
	refs, _ = admin.DocumentIndex(ctx, sonLa, broker.BoxReceived)
	pairs, err = admin.LoadDocument(ctx, refs[0])
	if err != nil || len(pairs) != 1 || pairs[0].Recipient != sonLa {
		t.Fatalf("recipient's pairs = %+v %v", pairs, err)
	}

	senders, err := admin.IDSenders(ctx, sent[0])
	if err != nil || fmt.Sprint(senders) != fmt.Sprint([]string{govOffice}) {
		t.Fatalf("senders of %s = %v %v", sent[0], senders, err)
	}
	if senders, err := admin.IDSenders(ctx, envelope.NewID()); err != nil || len(senders) != 0 {
		t.Fatalf("senders of a new id = %v %v", senders, err)
	}
}

// TestDocumentIndexWhileEntriesChange: a document whose tracking changes
// while the index is read is still listed. Reading the keys through a
// consumer lost it: the bucket keeps one revision per key, so the revision
// the consumer was to deliver was gone, and the new one came after the
// consumer had reported all its initial keys (a clerk's page dropped a
// document it showed a moment before, and no later change brought it
// back).
func TestDocumentIndexWhileEntriesChange(t *testing.T) {
	bus := bustest.Start(t)
	ctx := ctxT(t)
	admin := bus.Service.Client
	kv, err := admin.JetStream().KeyValue(ctx, record.TrackBucket)
	if err != nil {
		t.Fatal(err)
	}
	tok, other := envelope.Token(govOffice), envelope.Token(ngheAn)
	var keys []string
	for range 300 {
		k := tok + "." + envelope.NewID() + "." + other
		if _, err := kv.Put(ctx, k, []byte(`{"state":"sent"}`)); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if _, err := kv.Put(ctx, keys[i%len(keys)], []byte(fmt.Sprintf(`{"state":"delivered","n":%d}`, i))); err != nil {
				done <- err
				return
			}
		}
	}()
	defer func() {
		close(stop)
		if err := <-done; err != nil {
			t.Errorf("updates: %v", err)
		}
	}()
	for try := range 40 {
		refs, err := admin.DocumentIndex(ctx, govOffice, broker.BoxSent)
		if err != nil {
			t.Fatal(err)
		}
		if len(refs) != len(keys) {
			t.Fatalf("read %d: %d documents listed while their entries changed, want %d", try, len(refs), len(keys))
		}
	}
}
