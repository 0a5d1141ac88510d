package attacks_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/httpapi"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Attacks on the HTTP API, with plain net/http and an agency's own token.

// TestHTTPForgedReceiptGrantsNothing: H99 signs, with its own key, a
// delivered receipt for an envelope G22 sent only to H14, and publishes it
// on the status subject its permissions allow. Over HTTP it then gets
// neither the envelope, nor its status, nor the attachment, nor a line in
// its lists; G22 and H14 see their document as before.
func TestHTTPForgedReceiptGrantsNothing(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	id, secret := a.victimSend()

	st := envelope.NewStatus(attacker, victimSender, id, envelope.StateDelivered)
	raw, err := a.bus.Identity(attacker).Seal(st)
	if err != nil {
		t.Fatal(err)
	}
	nc, _ := a.raw(attacker)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: record.StatusSubject(victimSender, attacker), Data: raw, Header: nats.Header{}}
	msg.Header.Set(record.HeaderEnvelope, id)
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatalf("publish the forged receipt: %v", err)
	}
	// H14's real receipt comes after it on the record, for the same
	// envelope: once the tracker shows it, it has handled the forgery.
	if resp, body := a.do(victimRecipient, "POST", "/v1/inbox/"+id+"/ack", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("ack = %d %s", resp.StatusCode, body)
	}
	if _, err := a.admin.WaitState(ctx, id, victimRecipient, envelope.StateDelivered); err != nil {
		t.Fatal(err)
	}

	httpNothingFor(t, a, attacker, id, secret)
	httpVictimIntact(t, a, id, secret, envelope.StateDelivered)
	httpNoEventsOf(t, a, attacker, id)
}

// httpNoEventsOf checks that agency's event stream does not carry
// envelope id. The stream replays the current state of the agency's pairs
// before any change, so once an envelope sent to it afterwards shows up,
// everything about id it would ever replay has gone by.
func httpNoEventsOf(t *testing.T, a *arena, agency, id string) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.http.URL+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+a.tok[agency])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s's events = %d", agency, resp.StatusCode)
	}
	res, err := a.client(victimSender).Send(ctx, envelope.New(victimSender, []string{agency}, "Mốc"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, id) {
			t.Fatalf("%s's event stream carries %s: %s", agency, id, line)
		}
		if strings.HasPrefix(line, "data: ") && strings.Contains(line, res.ID) {
			return
		}
	}
	t.Fatalf("%s's event stream ended before the marker: %v", agency, sc.Err())
}

// TestHTTPPoisonedPairServesNoOtherCopy goes further than the tracker
// lets an attacker today: the tracking state itself says H99 holds the
// envelope, pointing at H14's copy. The API reads the copy and finds it
// addressed to H14, so H99 still gets nothing.
func TestHTTPPoisonedPairServesNoOtherCopy(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	id, secret := a.victimSend()
	kv, err := a.admin.JetStream().KeyValue(ctx, record.TrackBucket)
	if err != nil {
		t.Fatal(err)
	}
	real, err := a.admin.Tracking(ctx, id, victimRecipient)
	if err != nil {
		t.Fatal(err)
	}
	fake := *real
	fake.Recipient, fake.Revision = attacker, 0
	b, _ := json.Marshal(fake)
	if _, err := kv.Put(ctx, envelope.Token(victimSender)+"."+id+"."+envelope.Token(attacker), b); err != nil {
		t.Fatal(err)
	}
	httpNothingFor(t, a, attacker, id, secret)
	httpVictimIntact(t, a, id, secret, envelope.StateSent)
}

// httpNothingFor checks that agency learns nothing of envelope id over
// HTTP: every route answers not_found and no answer carries the secret.
func httpNothingFor(t *testing.T, a *arena, agency, id, secret string) {
	t.Helper()
	for _, path := range []string{
		"/v1/envelopes/" + id,
		"/v1/envelopes/" + id + "/status",
		"/v1/envelopes/" + id + "/attachments/mat.txt",
		"/v1/envelopes/" + id + "/edxml",
		"/v1/envelopes/" + id + "/edxml/statuses",
	} {
		resp, body := a.do(agency, "GET", path, nil)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), secret) {
			t.Errorf("%s GET %s = %d %s, want 404", agency, path, resp.StatusCode, body)
		}
	}
	resp, body := a.do(agency, "POST", "/v1/envelopes/"+id+"/status", strings.NewReader(`{"state":"accepted"}`), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("%s sets a status on %s: %d %s", agency, id, resp.StatusCode, body)
	}
	for _, box := range []string{"all", "received", "sent"} {
		resp, body := a.do(agency, "GET", "/v1/envelopes?box="+box, nil)
		if resp.StatusCode != http.StatusOK || strings.Contains(string(body), id) {
			t.Errorf("%s lists box=%s: %d %s", agency, box, resp.StatusCode, body)
		}
	}
}

// httpVictimIntact checks that G22 and H14 still see their document: G22
// as its sender with H14 (and no one else) at state, both able to
// download the attachment.
func httpVictimIntact(t *testing.T, a *arena, id, secret string, state envelope.State) {
	t.Helper()
	resp, body := a.do(victimSender, "GET", "/v1/envelopes/"+id+"/status", nil)
	var st broker.DocumentStatus
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &st) != nil {
		t.Fatalf("sender's status = %d %s", resp.StatusCode, body)
	}
	if st.Sender != victimSender || len(st.Recipients) != 1 || st.Recipients[0].Recipient != victimRecipient || st.Recipients[0].State != state {
		t.Fatalf("sender's status = %s, want %s alone at %s", body, victimRecipient, state)
	}
	for _, who := range []string{victimSender, victimRecipient} {
		resp, body := a.do(who, "GET", "/v1/envelopes/"+id+"/attachments/mat.txt", nil)
		if resp.StatusCode != http.StatusOK || string(body) != secret {
			t.Fatalf("%s downloads its attachment: %d %s", who, resp.StatusCode, body)
		}
	}
}

// TestHTTPReusedIDRefused: H41 posts G22's envelope id as its own, as
// fields or signed with its own key; each is refused with id_taken, its
// file is not kept, and G22 stays the sender. G22 retrying its own send
// gets the same envelope back, not a second one.
func TestHTTPReusedIDRefused(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	id, secret := a.victimSend()

	// An id bound to G22 with nothing tracked yet (the binding alone).
	bound := envelope.NewID()
	ids, err := a.admin.JetStream().KeyValue(ctx, record.IDsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ids.Put(ctx, bound, []byte(victimSender)); err != nil {
		t.Fatal(err)
	}

	own := envelope.New(attacker2, []string{victimRecipient}, "Công văn giả")
	own.ID = id
	signed, err := a.bus.Identity(attacker2).Seal(own)
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("tệp của kẻ tấn công " + envelope.NewID())
	for _, tc := range []struct {
		name  string
		parts []httpPart
	}{
		{"meta.id of a tracked envelope", []httpPart{httpMeta(`{"id":"` + id + `","to":["` + victimRecipient + `"],"subject":"Giả"}`), httpFile("x.txt", content)}},
		{"meta.id bound to another sender", []httpPart{httpMeta(`{"id":"` + bound + `","to":["` + victimRecipient + `"],"subject":"Giả"}`), httpFile("x.txt", content)}},
		{"signed with its own key", []httpPart{{name: "signed", data: signed}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := a.httpPost(attacker2, tc.parts...)
			if resp.StatusCode != http.StatusConflict || httpCode(body) != "id_taken" {
				t.Fatalf("= %d %s, want 409 id_taken", resp.StatusCode, body)
			}
			if strings.Contains(string(body), victimSender) {
				t.Fatalf("the refusal names who holds the id: %s", body)
			}
		})
	}
	httpNotStored(t, a, content)
	if resp, body := a.do(attacker2, "GET", "/v1/envelopes/"+id, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("%s reads the id it tried to take: %d %s", attacker2, resp.StatusCode, body)
	}
	var env struct{ From, Role string }
	if resp, body := a.do(victimSender, "GET", "/v1/envelopes/"+id, nil); resp.StatusCode != http.StatusOK || json.Unmarshal(body, &env) != nil || env.Role != "sender" || env.From != victimSender {
		t.Fatalf("sender reads its envelope: %d %s", resp.StatusCode, body)
	}
	httpVictimIntact(t, a, id, secret, envelope.StateSent)

	// G22 sending its own id again: the same envelope, nothing new.
	resp, body := a.httpPost(victimSender, httpMeta(`{"id":"`+id+`","to":["`+victimRecipient+`"],"subject":"Mật: chỉ gửi Sơn La"}`), httpFile("mat.txt", []byte(secret)))
	var res struct {
		ID        string
		Duplicate bool
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &res) != nil || res.ID != id || !res.Duplicate {
		t.Fatalf("sender's retry = %d %s, want 200 duplicate", resp.StatusCode, body)
	}
	pending, err := a.admin.Pending(ctx, victimRecipient, broker.PendingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending.Envelopes) != 1 || pending.Envelopes[0].Envelope.ID != id {
		t.Fatalf("%s's mailbox after the retry holds %d copies, want 1", victimRecipient, len(pending.Envelopes))
	}
}

// TestHTTPRefusedPostLeavesNoAttachment: a request that is refused keeps
// no file in the store, whether it is refused before its files (checked
// first) or after (removed), and it never removes what was there before.
func TestHTTPRefusedPostLeavesNoAttachment(t *testing.T) {
	a := newArena(t)
	_, secret := a.victimSend()
	ts := a.httpServerWith(httpapi.Limits{Rate: -1, MaxAttachmentBytes: 4 << 10})
	okMeta := httpMeta(`{"to":["` + victimRecipient + `"],"subject":"Thử"}`)
	big := bytes.Repeat([]byte("x"), 8<<10)
	for _, tc := range []struct {
		name  string
		parts func(content []byte) []httpPart
		want  int
	}{
		{"file before the envelope part", func(c []byte) []httpPart { return []httpPart{httpFile("a.txt", c), okMeta} }, http.StatusBadRequest},
		{"unknown recipient", func(c []byte) []httpPart {
			return []httpPart{httpMeta(`{"to":["000.00.00.H77"],"subject":"x"}`), httpFile("a.txt", c)}
		}, http.StatusUnprocessableEntity},
		{"a later file too large", func(c []byte) []httpPart {
			return []httpPart{okMeta, httpFile("a.txt", c), httpFile("b.bin", big)}
		}, http.StatusRequestEntityTooLarge},
		{"a later file named like the first", func(c []byte) []httpPart {
			return []httpPart{okMeta, httpFile("a.txt", c), httpFile("a.txt", []byte("y"))}
		}, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := []byte("chưa gửi " + envelope.NewID())
			resp, body := httpPostTo(t, ts.URL, a.tok[attacker2], tc.parts(content)...)
			if resp.StatusCode != tc.want {
				t.Fatalf("= %d %s, want %d", resp.StatusCode, body, tc.want)
			}
			httpNotStored(t, a, content)
		})
	}
	t.Run("bytes stored before are kept", func(t *testing.T) {
		// The attacker knows the victim's bytes and sends them in a
		// request that fails: the object is not its to remove.
		resp, body := httpPostTo(t, ts.URL, a.tok[attacker2], okMeta, httpFile("a.txt", []byte(secret)), httpFile("b.bin", big))
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("= %d %s", resp.StatusCode, body)
		}
		if _, err := a.admin.Store().Stat(ctxT(t), storage.Key(httpSum([]byte(secret)))); err != nil {
			t.Fatalf("the victim's attachment was removed: %v", err)
		}
		if resp, body := a.do(victimRecipient, "GET", "/v1/envelopes?box=received", nil); resp.StatusCode != http.StatusOK || strings.Contains(string(body), "Thử") {
			t.Fatalf("a refused send reached the mailbox: %d %s", resp.StatusCode, body)
		}
	})
}

// TestHTTPDuplicateKeysRefused: a body with a key twice, or two keys
// that differ in case only, could pass a check on one value and act on
// the other; each is refused and changes nothing.
func TestHTTPDuplicateKeysRefused(t *testing.T) {
	a := newArena(t)
	id, _ := a.victimSend()
	for _, m := range []string{
		`{"to":["` + victimRecipient + `"],"subject":"a","subject":"b"}`,
		`{"to":["` + victimRecipient + `"],"subject":"a","Subject":"b"}`,
		`{"to":["` + victimRecipient + `"],"subject":"a","from":"` + attacker2 + `","FROM":"` + victimSender + `"}`,
		`{"to":["` + victimRecipient + `"],"subject":"a","document":{"code_number":"1","Code_Number":"2"}}`,
		`{"to":["` + victimRecipient + `"],"subject":"a","\u0073ubject":"b"}`,
	} {
		resp, body := a.httpPost(attacker2, httpMeta(m))
		if resp.StatusCode != http.StatusBadRequest || httpCode(body) != "bad_request" {
			t.Errorf("meta %s = %d %s, want 400", m, resp.StatusCode, body)
		}
	}
	if resp, body := a.do(victimRecipient, "POST", "/v1/inbox/"+id+"/ack", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("ack = %d %s", resp.StatusCode, body)
	}
	for _, b := range []string{`{"state":"accepted","state":"done"}`, `{"state":"accepted","STATE":"rejected"}`} {
		resp, body := a.do(victimRecipient, "POST", "/v1/envelopes/"+id+"/status", strings.NewReader(b), "Content-Type", "application/json")
		if resp.StatusCode != http.StatusBadRequest || httpCode(body) != "bad_request" {
			t.Errorf("status %s = %d %s, want 400", b, resp.StatusCode, body)
		}
	}
	if tr, err := a.admin.Tracking(ctxT(t), id, victimRecipient); err != nil || tr.State != envelope.StateDelivered {
		t.Fatalf("state after refused statuses = %+v %v", tr, err)
	}
	pending, err := a.admin.Pending(ctxT(t), victimRecipient, broker.PendingOptions{})
	if err != nil || len(pending.Envelopes) != 0 {
		t.Fatalf("refused sends reached %s: %+v %v", victimRecipient, pending, err)
	}
}

// TestHTTPSlowBodyIsCut: a body that trickles in holds the connection
// only until the server's grace runs out, then the connection is closed.
// A large body at a useful speed still goes through.
func TestHTTPSlowBodyIsCut(t *testing.T) {
	a := newArena(t)
	ts := a.httpServerWith(httpapi.Limits{Rate: -1, BodyTimeout: 500 * time.Millisecond, MinBodyRate: 1 << 10})
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A bound on the test, not a measure: the server must end it first.
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "POST /v1/envelopes HTTP/1.1\r\nHost: docaxis\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 100000\r\n\r\n", a.tok[attacker2])
	stop := make(chan struct{})
	defer close(stop)
	var trickled atomic.Int64
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte("-")); err != nil {
					return
				}
				trickled.Add(1)
			}
		}
	}()
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to a trickling body (%d bytes sent): %v", trickled.Load(), err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout || httpCode(body) != "timeout" {
		t.Fatalf("trickling body = %d %s, want 408 timeout", resp.StatusCode, body)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the connection stayed open after the cut")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server did not close the connection")
	}

	// 1 MiB at loopback speed is far above the minimum rate.
	resp2, body2 := httpPostTo(t, ts.URL, a.tok[victimSender], httpMeta(`{"to":["`+victimRecipient+`"],"subject":"Tệp lớn"}`),
		httpFile("lon.bin", bytes.Repeat([]byte("z"), 1<<20)))
	if resp2.StatusCode != http.StatusCreated {
		t.Fatalf("a fast large upload = %d %s", resp2.StatusCode, body2)
	}
}

// TestHTTPEventStreamsCapped: one token cannot open event streams
// without end; another token is not held back, and a stream closed frees
// its place.
func TestHTTPEventStreamsCapped(t *testing.T) {
	a := newArena(t)
	ts := a.httpServerWith(httpapi.Limits{Rate: -1, MaxEventStreams: 2})
	open := func(code string) (*http.Response, context.CancelFunc) {
		t.Helper()
		ctx, cancel := context.WithCancel(ctxT(t))
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+a.tok[code])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); resp.Body.Close() })
		return resp, cancel
	}
	first, closeFirst := open(attacker2)
	second, _ := open(attacker2)
	if first.StatusCode != http.StatusOK || second.StatusCode != http.StatusOK {
		t.Fatalf("streams within the cap = %d, %d", first.StatusCode, second.StatusCode)
	}
	third, _ := open(attacker2)
	body, _ := io.ReadAll(third.Body)
	if third.StatusCode != http.StatusTooManyRequests || httpCode(body) != "too_many_streams" {
		t.Fatalf("stream over the cap = %d %s, want 429 too_many_streams", third.StatusCode, body)
	}
	if other, _ := open(victimSender); other.StatusCode != http.StatusOK {
		t.Fatalf("another token's stream = %d", other.StatusCode)
	}
	closeFirst()
	// The place frees once the server has seen the stream end.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		again, cancel := open(attacker2)
		if again.StatusCode == http.StatusOK {
			break
		}
		cancel()
		select {
		case <-ctxT(t).Done():
			t.Fatal("a closed stream never freed its place")
		case <-tick.C:
		}
	}
}

// TestHTTPMetricsNotOnTheAPI: the bus's figures are not served on the API
// listener, with or without an agency's token.
func TestHTTPMetricsNotOnTheAPI(t *testing.T) {
	a := newArena(t)
	a.victimSend()
	for _, code := range []string{"", attacker} {
		resp, body := a.do(code, "GET", "/metrics", nil)
		if (resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusUnauthorized) || strings.Contains(string(body), "docaxis_") {
			t.Fatalf("GET /metrics with token of %q = %d %s", code, resp.StatusCode, body)
		}
	}
}

// TestHTTPListReadsOnlyThePage: an agency with a long history asks for
// one page; the server reads the tracking entries of that page, not of
// the whole history. The reads are counted on the wire: every read of a
// tracking entry is a request on the bucket's get subjects, which a
// subscription of the bus's own account sees.
func TestHTTPListReadsOnlyThePage(t *testing.T) {
	a := newArena(t)
	ctx := ctxT(t)
	const history, page = 30, 5
	sender := a.client(victimSender)
	var ids []string
	for i := range history {
		res, err := sender.Send(ctx, envelope.New(victimSender, []string{victimRecipient}, fmt.Sprintf("Công văn %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	for _, id := range ids {
		if _, err := a.admin.WaitState(ctx, id, victimRecipient, envelope.StateSent); err != nil {
			t.Fatal(err)
		}
	}
	reads := httpCountReads(t, a)

	var list struct {
		Documents []struct{ ID string }
		Total     int
		More      bool
		Next      string
	}
	resp, body := a.do(victimRecipient, "GET", fmt.Sprintf("/v1/envelopes?box=received&limit=%d", page), nil)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("list = %d %s", resp.StatusCode, body)
	}
	track, copies := reads.settle(t)
	if len(list.Documents) != page || !list.More || list.Next == "" || list.Total != history {
		t.Fatalf("first page = %d documents, more %v, next %q, total %d", len(list.Documents), list.More, list.Next, list.Total)
	}
	for i, d := range list.Documents {
		if d.ID != ids[history-1-i] {
			t.Fatalf("first page, row %d = %s, want the newest first", i, d.ID)
		}
	}
	// Zero is possible (entries the server already held); the bound is
	// what matters.
	t.Logf("first page: %d tracking reads, %d copy reads", track, copies)
	// Other parts of the bus (the tracker) may read an entry meanwhile:
	// the bound is a page's worth with room for them, far from the history.
	if track > 2*page || copies > 2*page {
		t.Fatalf("a page of %d read %d tracking entries and %d copies of a history of %d", page, track, copies, history)
	}

	resp, body = a.do(victimRecipient, "GET", fmt.Sprintf("/v1/envelopes?box=received&limit=%d&before=%s", page, list.Next), nil)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Documents) != page || list.Documents[0].ID != ids[history-1-page] {
		t.Fatalf("second page = %d %s", resp.StatusCode, body)
	}
	if track, _ := reads.settle(t); track > 2*page {
		t.Fatalf("the second page read %d tracking entries", track)
	}
}

// httpReads counts the reads of tracking entries and of envelope copies
// made by any client of the bus's account.
type httpReads struct {
	nc            *nats.Conn
	track, copies atomic.Int64
}

func httpCountReads(t *testing.T, a *arena) *httpReads {
	t.Helper()
	nc, err := nats.Connect(a.bus.URL(), a.bus.AdminOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	r := &httpReads{nc: nc}
	count := func(n *atomic.Int64) nats.MsgHandler { return func(*nats.Msg) { n.Add(1) } }
	for subj, n := range map[string]*atomic.Int64{
		"$JS.API.DIRECT.GET.KV_" + record.TrackBucket + ".>": &r.track,
		"$JS.API.DIRECT.GET.KV_" + record.TrackBucket:        &r.track,
		"$JS.API.STREAM.MSG.GET.KV_" + record.TrackBucket:    &r.track,
		"$JS.API.DIRECT.GET." + record.Stream + ".>":         &r.copies,
		"$JS.API.DIRECT.GET." + record.Stream:                &r.copies,
		"$JS.API.STREAM.MSG.GET." + record.Stream:            &r.copies,
	} {
		if _, err := nc.Subscribe(subj, count(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return r
}

// settle returns the reads counted since the last call. The reads were
// answered before the HTTP answer came, so a round trip to the server
// delivers every copy of them to this connection first.
func (r *httpReads) settle(t *testing.T) (track, copies int64) {
	t.Helper()
	if err := r.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return r.track.Swap(0), r.copies.Swap(0)
}

// httpServerWith serves the arena's bus with other limits (short
// timeouts, small caps), with the same tokens.
func (a *arena) httpServerWith(lim httpapi.Limits) *httptest.Server {
	a.t.Helper()
	ctx := ctxT(a.t)
	tokens, err := httpapi.OpenTokens(ctx, a.admin.JetStream(), httpapi.TokensConfig{})
	if err != nil {
		a.t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{Client: a.admin, Auth: tokens, Logger: bustest.Logger(), Limits: lim})
	if err != nil {
		a.t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	a.t.Cleanup(ts.Close)
	a.t.Cleanup(srv.Drain)
	return ts
}

// httpPart is one part of a multipart body.
type httpPart struct {
	name, filename string
	data           []byte
}

func httpMeta(v string) httpPart { return httpPart{name: "meta", data: []byte(v)} }

func httpFile(name string, data []byte) httpPart {
	return httpPart{name: "file", filename: name, data: data}
}

// httpPost posts a multipart envelope as code on the arena's API.
func (a *arena) httpPost(code string, parts ...httpPart) (*http.Response, []byte) {
	a.t.Helper()
	return httpPostTo(a.t, a.http.URL, a.tok[code], parts...)
}

func httpPostTo(t *testing.T, base, token string, parts ...httpPart) (*http.Response, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := `form-data; name="` + p.name + `"`
		if p.filename != "" {
			cd += `; filename="` + p.filename + `"`
		}
		h.Set("Content-Disposition", cd)
		if p.name == "meta" {
			h.Set("Content-Type", "application/json")
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.data)
	}
	mw.Close()
	req, err := http.NewRequestWithContext(ctxT(t), "POST", base+"/v1/envelopes", &buf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// httpCode is the stable code of a JSON error answer.
func httpCode(body []byte) string {
	var e struct{ Code string }
	_ = json.Unmarshal(body, &e)
	return e.Code
}

func httpSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// httpNotStored checks that no object holds content.
func httpNotStored(t *testing.T, a *arena, content []byte) {
	t.Helper()
	_, err := a.admin.Store().Stat(ctxT(t), storage.Key(httpSum(content)))
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the file of a refused request is in the store (stat: %v)", err)
	}
}
