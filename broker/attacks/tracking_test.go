package attacks_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Tracking attacks (issue 13 items 1, 2, 4, "only verified data makes
// state"; issue 20 item 8): an agency with its own credentials, key and
// token tries to become a party to another agency's envelope through the
// tracker, and to read the tracking it may not see.

// trackPublish publishes data into the record with conn (an attacker's raw
// connection) and returns its sequence.
func trackPublish(t *testing.T, nc *nats.Conn, subject string, data []byte) uint64 {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctxT(t), subject, data)
	if err != nil {
		t.Fatalf("publish on %s: %v", subject, err)
	}
	return ack.Sequence
}

// trackWait waits until the bus's tracker has handled the record up to
// seq: what it has not made by then, it does not make.
func (a *arena) trackWait(seq uint64) {
	a.t.Helper()
	ctx := ctxT(a.t)
	for {
		cons, err := a.admin.JetStream().Consumer(ctx, record.Stream, record.TrackerDurable)
		if err != nil {
			a.t.Fatal(err)
		}
		if cons.CachedInfo().AckFloor.Stream >= seq {
			return
		}
		select {
		case <-ctx.Done():
			a.t.Fatalf("tracker did not reach #%d", seq)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// trackSeal signs e with code's own key, as the attacker's program can.
func (a *arena) trackSeal(code string, e *envelope.Envelope) []byte {
	a.t.Helper()
	id := a.bus.Identity(code)
	raw, err := envelope.Seal(e, id.Key, id.Chain)
	if err != nil {
		a.t.Fatal(err)
	}
	return raw
}

// trackVictimIntact checks that G22's envelope id is G22's, tracked for H14
// alone, readable by both over HTTP with the attachment, and by nobody
// else.
func (a *arena) trackVictimIntact(id, secret string) {
	a.t.Helper()
	ctx := ctxT(a.t)
	if got, err := a.admin.EnvelopeSender(ctx, id); err != nil || got != victimSender {
		a.t.Fatalf("envelope %s bound to %q (%v)", id, got, err)
	}
	ds, err := a.client(victimSender).Status(ctx, id)
	if err != nil {
		a.t.Fatal(err)
	}
	if ds.Sender != victimSender || len(ds.Recipients) != 1 || ds.Recipients[0].Recipient != victimRecipient || ds.Recipients[0].Sender != victimSender {
		a.t.Fatalf("victim's status: %+v", ds)
	}
	for _, who := range []string{victimSender, victimRecipient} {
		resp, body := a.do(who, "GET", "/v1/envelopes/"+id, nil)
		if resp.StatusCode != http.StatusOK {
			a.t.Fatalf("%s reads its envelope: %d %s", who, resp.StatusCode, body)
		}
		if resp, body := a.do(who, "GET", "/v1/envelopes/"+id+"/attachments/mat.txt", nil); resp.StatusCode != http.StatusOK || string(body) != secret {
			a.t.Fatalf("%s reads its attachment: %d %q", who, resp.StatusCode, body)
		}
	}
	if got := string(jsonField(a.t, a.doBody(victimSender, "/v1/envelopes/"+id), "role")); got != `"sender"` {
		a.t.Fatalf("victim sender's role %s", got)
	}
	sum := sha256.Sum256([]byte(secret))
	for _, who := range []string{attacker, attacker2} {
		if resp, body := a.do(who, "GET", "/v1/envelopes/"+id, nil); resp.StatusCode != http.StatusNotFound {
			a.t.Fatalf("%s reads the victim's envelope: %d %s", who, resp.StatusCode, body)
		}
		if resp, body := a.do(who, "GET", "/v1/envelopes/"+id+"/attachments/mat.txt", nil); resp.StatusCode != http.StatusNotFound {
			a.t.Fatalf("%s downloads the victim's attachment: %d %q", who, resp.StatusCode, body)
		}
		if _, _, err := a.client(who).Store().Get(ctx, storage.Key(hex.EncodeToString(sum[:]))); !errors.Is(err, filesvc.ErrForbidden) {
			a.t.Fatalf("%s reads the victim's attachment through the attachment service: %v", who, err)
		}
		if _, err := a.client(who).Status(ctx, id); !errors.Is(err, broker.ErrNotFound) {
			a.t.Fatalf("%s reads the victim's tracking: %v", who, err)
		}
		if _, err := a.client(who).Tracking(ctx, id, victimRecipient); !errors.Is(err, broker.ErrNotFound) {
			a.t.Fatalf("%s reads the recipient's tracking: %v", who, err)
		}
	}
}

func (a *arena) doBody(code, path string) []byte {
	a.t.Helper()
	_, body := a.do(code, "GET", path, nil)
	return body
}

func jsonField(t *testing.T, body []byte, field string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return m[field]
}

// Attack 1 of issue 13 (and issue 20 item 8): H99 signs, with its own key,
// receipts and statuses about G22's envelope to H14 and publishes them as
// its own statuses to G22. They make it no recipient.
func TestTrackingForgedReceiptMakesNoRecipient(t *testing.T) {
	a := newArena(t)
	id, secret := a.victimSend()
	nc, _ := a.raw(attacker)
	var last uint64
	for _, state := range []envelope.State{envelope.StateDelivered, envelope.StateInvalid, envelope.StateAccepted, envelope.StateDone} {
		st := envelope.NewStatus(attacker, victimSender, id, state)
		st.Status.Digest = strings.Repeat("0", 64)
		last = trackPublish(t, nc, record.StatusSubject(victimSender, attacker), a.trackSeal(attacker, st))
	}
	a.trackWait(last)
	if _, err := a.admin.Tracking(ctxT(t), id, attacker); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("the attacker is tracked as a recipient: %v", err)
	}
	a.trackVictimIntact(id, secret)
	// The real recipient's pair is untouched by the forgeries.
	tr, err := a.admin.Tracking(ctxT(t), id, victimRecipient)
	if err != nil || tr.State != envelope.StateSent || len(tr.History) != 1 || len(tr.Refused) != 0 {
		t.Fatalf("recipient's pair: %+v, %v", tr, err)
	}
}

// Attack 2 of issue 13: H41 reuses G22's envelope id in copies to the
// victim's recipient H14: signed with its own key, unsigned, and unsigned
// claiming G22 as sender. None makes state; G22 stays the sender, also
// after the next change to the real pair.
func TestTrackingReusedIDMakesNoState(t *testing.T) {
	a := newArena(t)
	id, secret := a.victimSend()
	nc, _ := a.raw(attacker2)
	sum := sha256.Sum256([]byte(secret))
	hexSum := hex.EncodeToString(sum[:])
	manifest := []envelope.Attachment{{Name: "mat.txt", MediaType: "text/plain", Size: int64(len(secret)), SHA256: hexSum, Key: storage.Key(hexSum)}}

	signed := envelope.New(attacker2, []string{victimRecipient}, "Dùng lại id của người khác")
	signed.ID, signed.Attachments = id, manifest
	unsigned := envelope.New(attacker2, []string{victimRecipient}, "Không ký")
	unsigned.ID, unsigned.Attachments = id, manifest
	bare, _ := json.Marshal(unsigned)
	// Claiming G22 as sender needs G22's subject, which H41 cannot publish
	// on; the unsigned copy names G22 anyway.
	claims := envelope.New(victimSender, []string{victimRecipient}, "Mạo danh")
	claims.ID, claims.Attachments = id, manifest
	claimsRaw, _ := json.Marshal(claims)

	trackPublish(t, nc, record.DocSubject(victimRecipient, attacker2), a.trackSeal(attacker2, signed))
	trackPublish(t, nc, record.DocSubject(victimRecipient, attacker2), bare)
	a.trackWait(trackPublish(t, nc, record.DocSubject(victimRecipient, attacker2), claimsRaw))

	// A later change to the real pair does not hand the id over either.
	if got := trackReceive(t, a.client(victimRecipient), victimRecipient); len(got) != 1 || got[0] != id {
		t.Fatalf("the recipient's mailbox handed over %v", got)
	}
	if _, err := a.admin.WaitState(ctxT(t), id, victimRecipient, envelope.StateDelivered); err != nil {
		t.Fatal(err)
	}
	a.trackVictimIntact(id, secret)
	if resp, body := a.do(attacker2, "GET", "/v1/envelopes/"+id+"/status", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("attacker reads the status over HTTP: %d %s", resp.StatusCode, body)
	}
}

// trackReceive drains code's mailbox with the client library and returns
// the ids of the envelopes handed over (verified).
func trackReceive(t *testing.T, c *broker.Client, code string) []string {
	t.Helper()
	ctx := ctxT(t)
	mb, err := c.Mailbox(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	if _, err := mb.Fetch(ctx, 0, time.Second, func(_ context.Context, d *broker.Delivery) error {
		ids = append(ids, d.Envelope.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// Attack 4 of issue 13: an unsigned copy listing the victim's SHA-256 does
// not give its publisher (or anyone) the attachment.
func TestTrackingUnverifiedManifestGivesNoAttachment(t *testing.T) {
	a := newArena(t)
	id, secret := a.victimSend()
	nc, _ := a.raw(attacker)
	sum := sha256.Sum256([]byte(secret))
	hexSum := hex.EncodeToString(sum[:])
	e := envelope.New(attacker, []string{attacker2}, "Danh mục chưa ký")
	e.Attachments = []envelope.Attachment{{Name: "x.txt", MediaType: "text/plain", Size: int64(len(secret)), SHA256: hexSum, Key: storage.Key(hexSum)}}
	bare, _ := json.Marshal(e)
	b64 := base64.RawURLEncoding.EncodeToString
	// The same in JWS form without a signature, and a signature made over
	// a harmless manifest with the payload swapped afterwards.
	none := b64([]byte(`{"alg":"none"}`)) + "." + b64(bare) + "."
	harmless := envelope.New(attacker, []string{attacker2}, "Vô hại")
	harmless.ID = e.ID
	parts := strings.Split(string(a.trackSeal(attacker, harmless)), ".")
	swapped := parts[0] + "." + b64(bare) + "." + parts[2]
	subject := record.DocSubject(attacker2, attacker)
	trackPublish(t, nc, subject, bare)
	trackPublish(t, nc, subject, []byte(none))
	a.trackWait(trackPublish(t, nc, subject, []byte(swapped)))
	for _, who := range []string{attacker, attacker2} {
		if _, _, err := a.client(who).Store().Get(ctxT(t), storage.Key(hexSum)); !errors.Is(err, filesvc.ErrForbidden) {
			t.Fatalf("%s reads the victim's attachment after an unverified manifest: %v", who, err)
		}
	}
	a.trackVictimIntact(id, secret)
}

// Issue 13 item 3 for the tracking bucket: an agency has no JetStream
// access to KV_AXIS_TRACK at all: no listing of its keys, no consumers
// made or deleted (the bus's own included), no reads of any key.
func TestTrackingBucketClosedToAgencies(t *testing.T) {
	a := newArena(t)
	id, _ := a.victimSend()
	s := "KV_" + record.TrackBucket
	key := "$KV." + record.TrackBucket + "." + envelope.Token(victimSender) + "." + id + "." + envelope.Token(victimRecipient)
	attacks := []struct {
		name, subject, body string
	}{
		{"stream info listing every key", "$JS.API.STREAM.INFO." + s, `{"subjects_filter":">"}`},
		{"stream info", "$JS.API.STREAM.INFO." + s, ``},
		{"consumer create named like the bus's", "$JS.API.CONSUMER.CREATE." + s + ".tracker.$KV.AXIS_TRACK.>",
			`{"stream_name":"` + s + `","config":{"durable_name":"tracker","filter_subject":"$KV.AXIS_TRACK.>","ack_policy":"none"}}`},
		{"consumer create on its own keys", "$JS.API.CONSUMER.CREATE." + s + ".mine.$KV.AXIS_TRACK." + envelope.Token(attacker) + ".*.*",
			`{"stream_name":"` + s + `","config":{"name":"mine","filter_subject":"$KV.AXIS_TRACK.` + envelope.Token(attacker) + `.*.*","ack_policy":"none"}}`},
		{"consumer delete", "$JS.API.CONSUMER.DELETE." + s + ".anything", ``},
		{"consumer list", "$JS.API.CONSUMER.LIST." + s, `{}`},
		{"direct get of the victim's key", "$JS.API.DIRECT.GET." + s + "." + key, ``},
		{"direct get batch", "$JS.API.DIRECT.GET." + s, `{"seq":1,"next_by_subj":"$KV.AXIS_TRACK.>","batch":100}`},
		{"write a key", key, `{"state":"done"}`},
	}
	for _, at := range attacks {
		t.Run(at.name, func(t *testing.T) {
			nc, v := a.raw(attacker)
			_, err := nc.Request(at.subject, []byte(at.body), 500*time.Millisecond)
			if err == nil {
				t.Fatalf("%s answered", at.subject)
			}
			if !v.saw(t, at.subject) {
				t.Fatalf("no permission violation on %s (request: %v)", at.subject, err)
			}
		})
	}
	// The bus's own consumers are all there, and the victim's tracking too.
	ctx := ctxT(t)
	if _, err := a.admin.JetStream().Consumer(ctx, record.Stream, record.TrackerDurable); err != nil {
		t.Fatalf("the tracker's consumer: %v", err)
	}
	if tr, err := a.admin.Tracking(ctx, id, victimRecipient); err != nil || tr.State != envelope.StateSent {
		t.Fatalf("victim's pair: %+v, %v", tr, err)
	}
}

// saw waits for the server's permission violation naming subject.
func (v *violations) saw(t *testing.T, subject string) bool {
	t.Helper()
	ctx := ctxT(t)
	for {
		select {
		case err := <-v.errs:
			if strings.Contains(strings.ToLower(err.Error()), "permissions violation") && strings.Contains(err.Error(), subject) {
				return true
			}
		case <-ctx.Done():
			return false
		}
	}
}

// The tracking service answers an agency from its own pairs only, to its
// own inbox only, and refuses what is malformed.
func TestTrackingServiceAnswersOnlyTheAgencysOwn(t *testing.T) {
	a := newArena(t)
	id, _ := a.victimSend()
	nc, v := a.raw(attacker)
	ask := func(op, body string) map[string]json.RawMessage {
		t.Helper()
		msg, err := nc.Request(record.TrackServiceSubject(attacker, op), []byte(body), 5*time.Second)
		if err != nil {
			t.Fatalf("%s %s: %v", op, body, err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(msg.Data, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	// Not its own: the very answer for an envelope that does not exist.
	other := envelope.NewID()
	for _, tc := range []struct{ op, body, none string }{
		{"status", `{"id":"` + id + `"}`, `{"id":"` + other + `"}`},
		{"tracking", `{"id":"` + id + `","recipient":"` + victimRecipient + `"}`, `{"id":"` + other + `","recipient":"` + victimRecipient + `"}`},
		{"tracking", `{"id":"` + id + `","recipient":"` + attacker + `"}`, `{"id":"` + other + `","recipient":"` + attacker + `"}`},
		{"statuses", `{"id":"` + id + `"}`, `{"id":"` + other + `"}`},
	} {
		got, want := ask(tc.op, tc.body), ask(tc.op, tc.none)
		if string(got["error"]) != `"not-found"` || strings.ReplaceAll(string(got["message"]), id, other) != string(want["message"]) || len(got) != len(want) {
			t.Fatalf("%s of another's envelope: %v; of none: %v", tc.op, got, want)
		}
	}
	// Lists hold nothing of others, however asked.
	for _, body := range []string{`{}`, `{"after":0,"limit":1000}`, `{"after":1}`} {
		for _, op := range []string{"sent", "received"} {
			if m := ask(op, body); string(m["entries"]) != `[]` && m["entries"] != nil {
				t.Fatalf("%s %s: %s", op, body, m["entries"])
			}
		}
	}
	// Malformed requests: refused with an error, nothing else.
	for _, tc := range []struct{ op, body string }{
		{"status", `{"id":"*"}`},
		{"status", `{"id":"` + id + `","sender":"` + victimSender + `"}`},
		{"tracking", `{"id":"` + id + `","recipient":"*.>"}`},
		{"sent", `{"limit":100000}`},
		{"sent", strings.Repeat(" ", 2048) + `{}`},
		{"delete", `{}`},
	} {
		if m := ask(tc.op, tc.body); string(m["error"]) != `"bad-request"` {
			t.Fatalf("%s %s: %v", tc.op, tc.body, m)
		}
	}
	// Another agency's request subject is not its to publish on.
	if _, err := nc.Request(record.TrackServiceSubject(victimSender, "status"), []byte(`{"id":"`+id+`"}`), 500*time.Millisecond); err == nil || !v.saw(t, record.TrackServiceSubject(victimSender, "status")) {
		t.Fatalf("asked as the victim: %v", err)
	}
	// Nor may it listen to another's events.
	sub, err := nc.SubscribeSync(record.TrackEventSubject(victimSender))
	if err == nil {
		_ = nc.Flush()
		if !v.saw(t, record.TrackEventSubject(victimSender)) {
			t.Fatal("subscribed to the victim's events")
		}
		_ = sub.Unsubscribe()
	}
	// An answer sent to another agency's inbox is not sent at all.
	victim, _ := a.raw(victimSender)
	inbox := "_INBOX_" + envelope.Token(victimSender) + ".stolen"
	stolen, err := victim.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := victim.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest(record.TrackServiceSubject(attacker, "sent"), inbox, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	ask("ping", `{}`) // served after the one above
	if err := victim.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := stolen.Pending(); n != 0 {
		t.Fatalf("the service answered into the victim's inbox (%d messages)", n)
	}
}

// The events of a pair go to its two agencies alone.
func TestTrackingEventsGoToThePairsAgencies(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	watchCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	attackerEvents, err := a.client(attacker).Watch(watchCtx, attacker)
	if err != nil {
		t.Fatal(err)
	}
	recipientEvents, err := a.client(victimRecipient).Watch(watchCtx, victimRecipient)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := a.victimSend()
	select {
	case tr := <-recipientEvents:
		if tr.Envelope != id || tr.Recipient != victimRecipient {
			t.Fatalf("recipient's event %+v", tr)
		}
	case <-ctx.Done():
		t.Fatal("no event for the recipient")
	}
	// The attacker's own document, sent after: its event is the first the
	// attacker sees, so nothing of the victim's came before it.
	res, err := a.client(attacker).Send(ctx, envelope.New(attacker, []string{attacker2}, "Của mình"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case tr := <-attackerEvents:
		if tr.Envelope != res.ID {
			t.Fatalf("the attacker saw %+v", tr)
		}
	case <-ctx.Done():
		t.Fatal("no event for the attacker's own document")
	}
}

// Knowing a hash is not holding the bytes: H99, having learned the SHA-256
// of the victim's attachment, signs a proper envelope of its own to its
// accomplice H41 listing it. The copy verifies and is tracked, but neither
// gets access to bytes H99 never uploaded, sent or received, through the
// attachment service or over HTTP.
func TestTrackingSignedManifestOfAHashGivesNoAttachment(t *testing.T) {
	a := newArena(t)
	id, secret := a.victimSend()
	nc, _ := a.raw(attacker)
	sum := sha256.Sum256([]byte(secret))
	hexSum := hex.EncodeToString(sum[:])
	e := envelope.New(attacker, []string{attacker2}, "Danh mục có chữ ký")
	e.Attachments = []envelope.Attachment{{Name: "x.txt", MediaType: "text/plain", Size: int64(len(secret)), SHA256: hexSum, Key: storage.Key(hexSum)}}
	a.trackWait(trackPublish(t, nc, record.DocSubject(attacker2, attacker), a.trackSeal(attacker, e)))
	if _, err := a.admin.WaitState(ctxT(t), e.ID, attacker2, envelope.StateSent); err != nil {
		t.Fatalf("the attacker's own verified copy is tracked: %v", err)
	}
	for _, who := range []string{attacker, attacker2} {
		if _, _, err := a.client(who).Store().Get(ctxT(t), storage.Key(hexSum)); !errors.Is(err, filesvc.ErrForbidden) {
			t.Fatalf("%s reads the victim's attachment through a hash it listed: %v", who, err)
		}
		if resp, body := a.do(who, "GET", "/v1/envelopes/"+e.ID+"/attachments/x.txt", nil); resp.StatusCode == 200 {
			t.Fatalf("%s downloads the victim's attachment over HTTP: %s", who, body)
		}
	}
	a.trackVictimIntact(id, secret)
}
