package bus_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publishSeq publishes data on subject with the bus's client and returns
// its sequence in the record.
func publishSeq(t *testing.T, c *broker.Client, subject string, data []byte) uint64 {
	t.Helper()
	ack, err := c.JetStream().PublishMsg(ctxT(t), &nats.Msg{Subject: subject, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

var waitTracked = bustest.WaitTracked

// refExists tells whether agency may read the attachment sum through the
// attachment service (its AXIS_FILEREFS entry).
func refExists(t *testing.T, c *broker.Client, sum, agency string) bool {
	t.Helper()
	return keyExists(t, c, record.FileRefKey(sum, agency))
}

// keyExists tells whether the attachment access bucket holds key.
func keyExists(t *testing.T, c *broker.Client, key string) bool {
	t.Helper()
	kv, err := c.JetStream().KeyValue(ctxT(t), record.FileRefsBucket)
	if err != nil {
		t.Fatal(err)
	}
	_, err = kv.Get(ctxT(t), key)
	switch {
	case err == nil:
		return true
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return false
	}
	t.Fatal(err)
	return false
}

// trackKeyExists reads the tracking bucket directly, whatever the rules of
// Status.
func trackKeyExists(t *testing.T, c *broker.Client, sender, id, recipient string) bool {
	t.Helper()
	kv, err := c.JetStream().KeyValue(ctxT(t), record.TrackBucket)
	if err != nil {
		t.Fatal(err)
	}
	_, err = kv.Get(ctxT(t), envelope.Token(sender)+"."+id+"."+envelope.Token(recipient))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

func secretManifest(secret string) (envelope.Attachment, string) {
	sum := sha256.Sum256([]byte(secret))
	h := hex.EncodeToString(sum[:])
	return envelope.Attachment{Name: "mat.txt", MediaType: "text/plain", Size: int64(len(secret)), SHA256: h, Key: "sha256/" + h}, h
}

// A copy makes a pair, a sender role, a recipient role and attachment
// access only when it verifies and matches its subject.
func TestTrackerTracksOnlyVerifiedCopies(t *testing.T) {
	tb := threeAgencies(t)
	c := tb.Client()
	g22, h41 := tb.Identity(govOffice), tb.Identity(ngheAn)
	seal := func(e *envelope.Envelope, id *signing.Identity) []byte {
		raw, err := envelope.Seal(e, id.Key, id.Chain)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	stranger, expired := tb.Impostors(t, govOffice)
	cases := []struct {
		name    string
		from    string // of the envelope
		to      []string
		subject string // published on
		make    func(e *envelope.Envelope) []byte
	}{
		{"unsigned", govOffice, []string{sonLa}, record.DocSubject(sonLa, govOffice), func(e *envelope.Envelope) []byte {
			j, _ := json.Marshal(e)
			return j
		}},
		{"unsigned in JWS form", govOffice, []string{sonLa}, record.DocSubject(sonLa, govOffice), func(e *envelope.Envelope) []byte {
			j, _ := json.Marshal(e)
			return []byte(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString(j) + ".")
		}},
		{"signature over other bytes", govOffice, []string{sonLa}, record.DocSubject(sonLa, govOffice), func(e *envelope.Envelope) []byte {
			raw := seal(e, g22)
			parts := bytes.Split(raw, []byte("."))
			e.Subject = "Nội dung đã bị sửa"
			p, _ := json.Marshal(e)
			parts[1] = []byte(base64.RawURLEncoding.EncodeToString(p))
			return bytes.Join(parts, []byte("."))
		}},
		{"certificate of another agency", govOffice, []string{sonLa}, record.DocSubject(sonLa, govOffice), func(e *envelope.Envelope) []byte { return seal(e, h41) }},
		{"untrusted CA", govOffice, []string{sonLa}, record.DocSubject(sonLa, govOffice), func(e *envelope.Envelope) []byte { return seal(e, stranger) }},
		{"expired certificate", govOffice, []string{sonLa}, record.DocSubject(sonLa, govOffice), func(e *envelope.Envelope) []byte {
			e.Created = time.Now().Add(-23 * time.Hour).UTC()
			return seal(e, expired)
		}},
		{"published as another sender", ngheAn, []string{sonLa}, record.DocSubject(sonLa, govOffice), func(e *envelope.Envelope) []byte { return seal(e, h41) }},
		{"not addressed to the subject's recipient", govOffice, []string{ngheAn}, record.DocSubject(sonLa, govOffice), func(e *envelope.Envelope) []byte { return seal(e, g22) }},
		{"a status on a mailbox subject", govOffice, []string{sonLa}, record.DocSubject(sonLa, govOffice), func(e *envelope.Envelope) []byte {
			st := envelope.NewStatus(govOffice, sonLa, envelope.NewID(), envelope.StateDelivered)
			st.ID = e.ID
			return seal(st, g22)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			secret := "mật " + tc.name
			att, sum := secretManifest(secret)
			e := envelope.New(tc.from, tc.to, "Thử: "+tc.name)
			e.Attachments = []envelope.Attachment{att}
			waitTracked(t, c, publishSeq(t, c, tc.subject, tc.make(e)))
			if _, err := c.Status(ctxT(t), e.ID); !errors.Is(err, broker.ErrNotFound) {
				t.Fatalf("status of an unverified copy: %v", err)
			}
			if _, err := c.EnvelopeSender(ctxT(t), e.ID); !errors.Is(err, broker.ErrNotFound) {
				t.Fatalf("id bound by an unverified copy: %v", err)
			}
			for _, who := range []string{govOffice, ngheAn, sonLa} {
				if trackKeyExists(t, c, who, e.ID, sonLa) || trackKeyExists(t, c, who, e.ID, ngheAn) {
					t.Fatalf("a pair of %s for %s", who, e.ID)
				}
				if refExists(t, c, sum, who) {
					t.Fatalf("attachment access for %s from an unverified manifest", who)
				}
			}
		})
	}
	// A verified copy listing bytes its sender never uploaded, sent or
	// received: knowing a hash is no proof of holding the bytes, so the
	// copy is tracked but grants no access to them.
	att, sum := secretManifest("mật của người khác")
	e := envelope.New(govOffice, []string{sonLa}, "Chỉ biết mã băm")
	e.Attachments = []envelope.Attachment{att}
	waitTracked(t, c, publishSeq(t, c, record.DocSubject(sonLa, govOffice), seal(e, g22)))
	if _, err := c.Status(ctxT(t), e.ID); err != nil {
		t.Fatalf("verified copy not tracked: %v", err)
	}
	if refExists(t, c, sum, govOffice) || refExists(t, c, sum, sonLa) {
		t.Fatal("attachment access from a hash the sender never held")
	}
	// The control: the same, with the bytes uploaded by the sender, counts.
	att, sum = secretManifest("mật thật")
	if err := c.RecordUpload(ctxT(t), sum, govOffice); err != nil {
		t.Fatal(err)
	}
	e = envelope.New(govOffice, []string{sonLa}, "Thật")
	e.Attachments = []envelope.Attachment{att}
	waitTracked(t, c, publishSeq(t, c, record.DocSubject(sonLa, govOffice), seal(e, g22)))
	ds, err := c.Status(ctxT(t), e.ID)
	if err != nil || ds.Sender != govOffice || len(ds.Recipients) != 1 || ds.Recipients[0].Recipient != sonLa {
		t.Fatalf("verified copy: %+v, %v", ds, err)
	}
	if !refExists(t, c, sum, govOffice) || !refExists(t, c, sum, sonLa) || refExists(t, c, sum, ngheAn) {
		t.Fatal("attachment access of the verified copy")
	}
}

// An envelope id belongs to the sender of its first verified copy: another
// sender's copies make no state, the sender's own (fan-out, redelivery)
// do.
func TestEnvelopeIDBoundToFirstVerifiedSender(t *testing.T) {
	const h99 = "000.00.00.H99"
	tb := threeAgencies(t)
	attacker := tb.AddAgency(h99, "Cơ quan thử tấn công")
	c := tb.Client()
	ctx := ctxT(t)

	// An unsigned copy with the id comes first: it binds nothing.
	e := envelope.New(govOffice, []string{ngheAn, sonLa}, "Của Văn phòng Chính phủ")
	early := envelope.New(h99, []string{sonLa}, "Đến trước, không ký")
	early.ID = e.ID
	j, _ := json.Marshal(early)
	waitTracked(t, c, publishSeq(t, c, record.DocSubject(sonLa, h99), j))

	secret := "Phụ lục của G22"
	res, err := tb.Client(govOffice).Send(ctx, e, broker.File{Name: "pl.txt", Reader: strings.NewReader(secret), Size: int64(len(secret))})
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range e.To {
		waitState(t, c, res.ID, to, envelope.StateSent)
	}
	// The same signed bytes again (a retry with a new dedup id): same
	// sender, fine, nothing changes.
	publishSeq(t, c, record.DocSubject(sonLa, govOffice), res.Signed)
	// Another sender's signed copy with the id, addressed properly.
	reuse := envelope.New(h99, []string{sonLa}, "Dùng lại id")
	reuse.ID = res.ID
	reuse.Attachments = e.Attachments
	raw, err := envelope.Seal(reuse, attacker.Key, attacker.Chain)
	if err != nil {
		t.Fatal(err)
	}
	waitTracked(t, c, publishSeq(t, c, record.DocSubject(sonLa, h99), raw))

	if got, err := c.EnvelopeSender(ctx, res.ID); err != nil || got != govOffice {
		t.Fatalf("bound sender %q, %v", got, err)
	}
	if trackKeyExists(t, c, h99, res.ID, sonLa) {
		t.Fatal("the reused id made a pair for its second sender")
	}
	ds, err := c.Status(ctx, res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Sender != govOffice || len(ds.Recipients) != 2 {
		t.Fatalf("status: sender %s, %d recipients", ds.Sender, len(ds.Recipients))
	}
	for _, r := range ds.Recipients {
		if r.Sender != govOffice || r.Subject != e.Subject || len(r.History) != 1 {
			t.Fatalf("pair %+v", r)
		}
	}
	// A client that can read the bindings refuses the reuse at send.
	again := envelope.New(h99, []string{sonLa}, "Gửi lại với id của người khác")
	again.ID = res.ID
	if _, err := c.Send(ctx, again); !errors.Is(err, broker.ErrIDTaken) {
		t.Fatalf("send with another's id: %v", err)
	}
	if _, err := c.SendSigned(ctx, raw); !errors.Is(err, broker.ErrIDTaken) {
		t.Fatalf("send signed with another's id: %v", err)
	}
	// The second sender's attachment access came from the manifest of a
	// copy that does not count.
	sum := sha256.Sum256([]byte(secret))
	if refExists(t, c, hex.EncodeToString(sum[:]), h99) {
		t.Fatal("attachment access from a copy reusing another's id")
	}
}

// A status or a receipt counts only for a pair a verified copy made:
// nothing makes an agency a recipient of what it never received.
func TestStatusesNeverCreatePairs(t *testing.T) {
	tb := threeAgencies(t)
	c := tb.Client()
	ctx := ctxT(t)
	res, err := tb.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Chỉ gửi Nghệ An"))
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, c, res.ID, ngheAn, envelope.StateSent)
	h14 := tb.Identity(sonLa)
	for _, state := range []envelope.State{envelope.StateDelivered, envelope.StateInvalid, envelope.StateAccepted, envelope.StateDone} {
		t.Run(string(state), func(t *testing.T) {
			st := envelope.NewStatus(sonLa, govOffice, res.ID, state)
			st.Status.Reason = "giả"
			raw, err := envelope.Seal(st, h14.Key, h14.Chain)
			if err != nil {
				t.Fatal(err)
			}
			waitTracked(t, c, publishSeq(t, c, record.StatusSubject(govOffice, sonLa), raw))
			if trackKeyExists(t, c, govOffice, res.ID, sonLa) {
				t.Fatalf("a %s status made Sơn La a recipient", state)
			}
			ds, err := c.Status(ctx, res.ID)
			if err != nil || len(ds.Recipients) != 1 || ds.Recipients[0].Recipient != ngheAn || ds.Recipients[0].State != envelope.StateSent {
				t.Fatalf("status after a forged %s: %+v, %v", state, ds, err)
			}
			if _, err := c.Tracking(ctx, res.ID, sonLa); !errors.Is(err, broker.ErrNotFound) {
				t.Fatalf("tracking for the phantom recipient: %v", err)
			}
		})
	}
	// A business envelope of another sender does not act on the pairs of
	// the envelope it refers to.
	recall := envelope.New(sonLa, []string{ngheAn}, "Thu hồi văn bản của người khác")
	recall.Kind, recall.Refers, recall.Reason = envelope.KindRevoke, res.ID, "giả"
	raw, err := envelope.Seal(recall, h14.Key, h14.Chain)
	if err != nil {
		t.Fatal(err)
	}
	waitTracked(t, c, publishSeq(t, c, record.DocSubject(ngheAn, sonLa), raw))
	if tr, err := c.Tracking(ctx, res.ID, ngheAn); err != nil || tr.State != envelope.StateSent {
		t.Fatalf("after another sender's recall: %+v, %v", tr, err)
	}
}

// A bus home kept by an earlier tracker (which trusted what it had not
// verified) is rebuilt from the record on the first start of this one:
// phantom pairs and attachment access from unverified manifests go, what
// verified copies made stays.
func TestTrackerRebuildsAnEarlierHome(t *testing.T) {
	defer bus.SetSweepInterval(20 * time.Millisecond)()
	tb := threeAgencies(t)
	c := tb.Client()
	ctx := ctxT(t)
	secret := "Phụ lục thật"
	res, err := tb.Client(govOffice).Send(ctx, envelope.New(govOffice, []string{ngheAn}, "Trước khi nâng cấp"),
		broker.File{Name: "pl.txt", Reader: strings.NewReader(secret), Size: int64(len(secret))})
	if err != nil {
		t.Fatal(err)
	}
	receiveAll(t, tb.Client(ngheAn), ngheAn)
	waitState(t, c, res.ID, ngheAn, envelope.StateDelivered)
	real := sha256.Sum256([]byte(secret))
	realSum := hex.EncodeToString(real[:])

	// What the earlier tracker left: a phantom pair from a forged receipt,
	// a pair and attachment access from an unsigned copy.
	_, forgedSum := secretManifest("bí mật của người khác")
	kv, err := c.JetStream().KeyValue(ctx, record.TrackBucket)
	if err != nil {
		t.Fatal(err)
	}
	phantom, _ := json.Marshal(broker.Tracking{Envelope: res.ID, Sender: govOffice, Recipient: sonLa, State: envelope.StateDelivered})
	if _, err := kv.Put(ctx, envelope.Token(govOffice)+"."+res.ID+"."+envelope.Token(sonLa), phantom); err != nil {
		t.Fatal(err)
	}
	other := envelope.NewID()
	unsigned, _ := json.Marshal(broker.Tracking{Envelope: other, Sender: sonLa, Recipient: ngheAn, State: envelope.StateSent, Seq: 1, Subject: "không ký"})
	if _, err := kv.Put(ctx, envelope.Token(sonLa)+"."+other+"."+envelope.Token(ngheAn), unsigned); err != nil {
		t.Fatal(err)
	}
	refs, err := c.JetStream().KeyValue(ctx, record.FileRefsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := refs.Put(ctx, record.FileRefKey(forgedSum, ngheAn), []byte(other)); err != nil {
		t.Fatal(err)
	}
	// An upload made before the upgrade and not sent yet: proof that the
	// uploader holds the bytes, which no copy in the record writes again.
	uploaded := record.UploadRefKey(hex.EncodeToString(make([]byte, 32)), sonLa)
	if _, err := refs.Put(ctx, uploaded, []byte("upload")); err != nil {
		t.Fatal(err)
	}
	if !keyExists(t, c, record.UploadRefKey(realSum, govOffice)) {
		t.Fatal("the sender's upload was not recorded")
	}
	// ... and its consumer, without this version's metadata.
	js := c.JetStream()
	if err := js.DeleteConsumer(ctx, record.Stream, record.TrackerDurable); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, record.Stream, jetstream.ConsumerConfig{Durable: record.TrackerDurable,
		AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverNewPolicy}); err != nil {
		t.Fatal(err)
	}

	tb.Restart()
	c = tb.Client()
	ctx = ctxT(t)
	tr := waitState(t, c, res.ID, ngheAn, envelope.StateDelivered)
	if tr.Sender != govOffice || tr.Subject != "Trước khi nâng cấp" {
		t.Fatalf("rebuilt pair %+v", tr)
	}
	if trackKeyExists(t, c, govOffice, res.ID, sonLa) || trackKeyExists(t, c, sonLa, other, ngheAn) {
		t.Fatal("pairs of the earlier rules survived the rebuild")
	}
	// The sweep of attachment access ends by clearing its mark.
	for {
		cons, err := c.JetStream().Consumer(ctx, record.Stream, record.TrackerDurable)
		if err != nil {
			t.Fatal(err)
		}
		meta := cons.CachedInfo().Config.Metadata
		if meta[bus.TrackerVersionKey] == "" {
			t.Fatalf("consumer metadata %v", meta)
		}
		if meta[bus.TrackerSweepKey] == "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("sweep not done: %v", meta)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if refExists(t, c, forgedSum, ngheAn) {
		t.Fatal("attachment access from an unverified manifest survived the rebuild")
	}
	if !refExists(t, c, realSum, ngheAn) || !refExists(t, c, realSum, govOffice) {
		t.Fatal("attachment access of a verified copy lost in the rebuild")
	}
	if !keyExists(t, c, uploaded) || !keyExists(t, c, record.UploadRefKey(realSum, govOffice)) {
		t.Fatal("uploads recorded before the rebuild were swept: their uploaders can no longer send them")
	}
	// A later start keeps the rebuilt tracking as it is.
	tb.Restart()
	c = tb.Client()
	if tr := waitState(t, c, res.ID, ngheAn, envelope.StateDelivered); tr.Revision == 0 {
		t.Fatal("no revision")
	}
}

// `docaxis serve` starts the bus's services with a context that has no
// deadline; so does a second process of a cluster.
func TestServiceStartsWithoutDeadline(t *testing.T) {
	tb := threeAgencies(t)
	nc, err := nats.Connect(tb.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	svc, err := bus.StartService(context.Background(), nc, bus.ServiceConfig{Trust: tb.Trust, Logger: bustest.Logger(), NoFiles: true})
	if err != nil {
		t.Fatal(err)
	}
	svc.Stop()
}

// trackerStopped starts a bus with govOffice and ngheAn and stops its
// tracker: what it has not acknowledged stays after its floor. seal signs
// an envelope as one of the two.
func trackerStopped(t *testing.T) (b *bustest.Bus, seal func(code string, e *envelope.Envelope) []byte) {
	t.Helper()
	b = bustest.Start(t)
	b.AddAgency(govOffice, "Văn phòng Chính phủ")
	b.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	b.Service.Tracker.Stop()
	return b, func(code string, e *envelope.Envelope) []byte {
		id := b.Identity(code)
		raw, err := envelope.Seal(e, id.Key, id.Chain)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
}

// A status whose pair no copy has made yet is looked at again only while
// a copy of its envelope, from its sender to its reporter, is in the
// record before it and not yet handled by the tracker (in a dead tracker's
// hands); a status about an envelope with no such copy is an orphan at
// once, and the looks are bounded.
func TestStatusAheadOfItsCopy(t *testing.T) {
	b, seal := trackerStopped(t)
	const sender, reporter = govOffice, ngheAn
	c := b.Service.Client
	e := envelope.New(sender, []string{reporter}, "Công văn")
	publishSeq(t, c, record.DocSubject(reporter, sender), seal(sender, e))
	// Another sender's copy to the reporter, of another envelope.
	other := envelope.New(reporter, []string{sender}, "Trả lời")
	publishSeq(t, c, record.DocSubject(sender, reporter), seal(reporter, other))
	ahead := publishSeq(t, c, record.StatusSubject(sender, reporter), seal(reporter, envelope.NewStatus(reporter, sender, e.ID, envelope.StateDelivered)))
	orphanID := envelope.NewID()
	orphan := publishSeq(t, c, record.StatusSubject(sender, reporter), seal(reporter, envelope.NewStatus(reporter, sender, orphanID, envelope.StateDelivered)))
	ctx := ctxT(t)
	for _, tc := range []struct {
		name     string
		seq, n   uint64
		of       string
		sender   string
		reporter string
		want     bool
	}{
		{"its copy in flight", ahead, 1, e.ID, sender, reporter, true},
		{"its copy in flight, looked at before", ahead, bus.CopyPendingDeliveries - 1, e.ID, sender, reporter, true},
		{"looked at long enough", ahead, bus.CopyPendingDeliveries, e.ID, sender, reporter, false},
		{"no copy of its envelope", orphan, 1, orphanID, sender, reporter, false},
		{"a copy the other way only", orphan, 1, other.ID, sender, reporter, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := b.Service.Tracker.CopyMayBePending(ctx, tc.seq, tc.n, tc.sender, tc.reporter, tc.of); got != tc.want {
				t.Fatalf("may be pending = %v, want %v", got, tc.want)
			}
		})
	}
}

// takeFromTracker fetches the next message from the tracker's consumer, as
// another tracker would, and checks it is on subject.
func takeFromTracker(t *testing.T, c *broker.Client, subject string) jetstream.Msg {
	t.Helper()
	cons, err := c.JetStream().Consumer(ctxT(t), record.Stream, record.TrackerDurable)
	if err != nil {
		t.Fatal(err)
	}
	held, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var m jetstream.Msg
	for msg := range held.Messages() {
		m = msg
	}
	if m == nil || m.Subject() != subject {
		t.Fatalf("fetched %v, want a message on %s", m, subject)
	}
	return m
}

// startTrackerUntil starts the bus's tracker and waits until seqs reports
// the receipt's record sequence, what says having done what.
func startTrackerUntil(t *testing.T, b *bustest.Bus, seqs <-chan uint64, receipt uint64, what string) {
	t.Helper()
	if err := b.Service.Tracker.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case seq := <-seqs:
		if seq != receipt {
			t.Fatalf("record #%d %s, want the receipt #%d", seq, what, receipt)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the receipt #%d was not %s", receipt, what)
	}
}

// A status whose copy is in another tracker's hands (one that took it and
// died, say) is asked for again later, not dropped: the pair it reports on
// is tracked when the copy comes back, and the status counts then.
func TestStatusAheadOfItsCopyCountsWhenItComes(t *testing.T) {
	b, seal := trackerStopped(t)
	const sender, reporter = govOffice, ngheAn
	ctx := ctxT(t)
	c := b.Service.Client
	naked := make(chan uint64, 16)
	bustest.OnTrackerNak(t, c.Conn(), func(seq uint64) { naked <- seq })

	e := envelope.New(sender, []string{reporter}, "Công văn")
	publishSeq(t, c, record.DocSubject(reporter, sender), seal(sender, e))
	receipt := publishSeq(t, c, record.StatusSubject(sender, reporter), seal(reporter, envelope.NewStatus(reporter, sender, e.ID, envelope.StateDelivered)))

	// The other tracker takes the copy and holds it.
	copyMsg := takeFromTracker(t, c, record.DocSubject(reporter, sender))

	startTrackerUntil(t, b, naked, receipt, "asked for again")
	if _, err := c.Tracking(ctx, e.ID, reporter); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("the pair is tracked before its copy: %v", err)
	}
	// The other tracker gives the copy back.
	if err := copyMsg.Nak(); err != nil {
		t.Fatal(err)
	}
	if tr := waitState(t, c, e.ID, reporter, envelope.StateDelivered); len(tr.History) == 0 {
		t.Fatalf("delivered without the receipt's event: %+v", tr)
	}
}

// A status read as an orphan while its copy's tracker (another process)
// writes the pair and acknowledges the copy still counts: it is dropped
// only on the word of the bucket's leader, read after the ack floor. Read
// the other way round, the floor counts the copy as handled while the read
// of the pair came before its write, and the receipt was lost (a pair left
// "sent" for good; seen in TestClusterProcesses).
func TestStatusCountsWhenItsPairIsWrittenMeanwhile(t *testing.T) {
	b, seal := trackerStopped(t)
	const sender, reporter = govOffice, ngheAn
	ctx := ctxT(t)
	c := b.Service.Client

	e := envelope.New(sender, []string{reporter}, "Công văn")
	signedCopy := seal(sender, e)
	copySeq := publishSeq(t, c, record.DocSubject(reporter, sender), signedCopy)
	receipt := publishSeq(t, c, record.StatusSubject(sender, reporter), seal(reporter, envelope.NewStatus(reporter, sender, e.ID, envelope.StateDelivered)))

	// The other tracker takes the copy.
	copyMsg := takeFromTracker(t, c, record.DocSubject(reporter, sender))

	untracked, goOn := make(chan uint64, 1), make(chan struct{})
	var once sync.Once
	bus.OnStatusUntracked(t, func(seq uint64) {
		once.Do(func() {
			untracked <- seq
			<-goOn
		})
	})
	startTrackerUntil(t, b, untracked, receipt, "read untracked")
	// Meanwhile the other tracker binds the id, writes the pair, as it
	// does, and acknowledges the copy.
	ids, err := c.JetStream().KeyValue(ctx, record.IDsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ids.Create(ctx, e.ID, []byte(sender)); err != nil {
		t.Fatal(err)
	}
	kv, err := c.JetStream().KeyValue(ctx, record.TrackBucket)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	pair, err := json.Marshal(broker.Tracking{
		Envelope: e.ID, Sender: sender, Recipient: reporter, Kind: e.Kind, Subject: e.Subject, Created: e.Created,
		Digest: envelope.Digest(signedCopy), Seq: copySeq, State: envelope.StateSent, Updated: at,
		History: []broker.Event{{State: envelope.StateSent, At: at, By: sender, Seq: copySeq}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, record.TrackKey(sender, e.ID, reporter), pair); err != nil {
		t.Fatal(err)
	}
	if err := copyMsg.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	waitTracked(t, c, copySeq)
	close(goOn)
	if tr := waitState(t, c, e.ID, reporter, envelope.StateDelivered); len(tr.History) != 2 {
		t.Fatalf("delivered with history %+v, want sent then the receipt", tr.History)
	}
}
