package attacks_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Systems in the arena: dms-victim serves sysVictim (and its mail is the
// prize); dms-evil serves sysEvil and is the attacker, with its real
// credentials and key.
const (
	sysVictimID = "dms-victim"
	sysEvilID   = "dms-evil"
	sysVictim   = "000.00.01.S14"
	sysEvil     = "000.00.01.S99"
)

type sysArena struct {
	*arena
	creds map[string]string
	ids   map[string]*signing.Identity
	ks    map[string]*signing.Keystore
}

func newSysArena(t *testing.T) *sysArena {
	t.Helper()
	a := &sysArena{arena: newArena(t), creds: map[string]string{}, ids: map[string]*signing.Identity{}, ks: map[string]*signing.Keystore{}}
	ctx := ctxT(t)
	for id, code := range map[string]string{sysVictimID: sysVictim, sysEvilID: sysEvil} {
		sid, err := a.bus.CA.IssueSystem(id, "DMS "+id, signing.IssueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ks, err := signing.OpenKeystore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := ks.SaveSystem(sid); err != nil {
			t.Fatal(err)
		}
		if err := a.admin.RegisterSystem(ctx, broker.System{ID: id, Name: "DMS " + id, Certificate: string(signing.EncodeCerts(sid.Chain...))}); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(a.bus.Dir, "home", "systems", id, "nats.creds")
		if err := a.bus.Auth.SystemCreds(id, path); err != nil {
			t.Fatal(err)
		}
		a.creds[id], a.ids[id], a.ks[id] = path, sid, ks
		res, err := a.admin.ImportAgencies(ctx, []broker.ImportLine{{Line: 1, Agency: broker.Agency{Code: code, Name: "Xã của " + id, System: id}, Fields: []string{"system"}}},
			broker.ImportOptions{Bind: a.bus.CA.SignBinding})
		if err != nil || len(res.Errors) != 0 {
			t.Fatalf("serve %s by %s: %+v %v", code, id, res, err)
		}
	}
	return a
}

// sysClient is the docaxis client library with a system's credentials.
func (a *sysArena) sysClient(id string) *broker.Client {
	a.t.Helper()
	c, err := broker.Connect(ctxT(a.t), a.bus.URL(), broker.WithAgencyCredentials(a.creds[id]), broker.WithKeystore(a.ks[id]),
		broker.WithTrust(a.bus.Trust), broker.WithLogger(bustest.Logger()))
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(c.Close)
	return c
}

// sysRaw is a plain nats.go connection with a system's credentials and
// its own inbox prefix.
func (a *sysArena) sysRaw(id string) (*nats.Conn, *violations) {
	a.t.Helper()
	v := &violations{errs: make(chan error, 64)}
	nc, err := nats.Connect(a.bus.URL(), nats.UserCredentials(a.creds[id]),
		nats.CustomInboxPrefix(auth.InboxPrefix(broker.SystemActor(id))),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { v.add(err) }))
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(nc.Close)
	return nc, v
}

// sysRefused publishes a request on nc and wants a permission violation
// and no answer.
func sysRefused(t *testing.T, nc *nats.Conn, v *violations, subject string, body []byte) {
	t.Helper()
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(subject, inbox, body); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("Publish to %q", subject)
	deadline := time.After(10 * time.Second)
	for refused := false; !refused; {
		select {
		case err := <-v.errs:
			refused = errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want)
		case <-deadline:
			t.Fatalf("no permission violation for %s", subject)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if msg, err := sub.NextMsg(0); err == nil {
		t.Fatalf("%s answered: %s %q", subject, msg.Header, msg.Data)
	}
}

// sysAsk sends a request to the bus's system service and returns the
// error code of its answer ("" for success).
func sysAsk(t *testing.T, nc *nats.Conn, subject string, header map[string]string, body []byte) (string, string) {
	t.Helper()
	m := nats.NewMsg(subject)
	for k, v := range header {
		m.Header.Set(k, v)
	}
	m.Data = body
	ans, err := nc.RequestMsg(m, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	return ans.Header.Get("Docaxis-Error"), string(ans.Data)
}

// sysVictimMail sends G22 → sysVictim a document with a secret attachment
// and returns its id, the attachment and the secret.
func (a *sysArena) sysVictimMail() (string, envelope.Attachment, string) {
	a.t.Helper()
	ctx := ctxT(a.t)
	secret := "Bí mật của xã " + envelope.NewID()
	res, err := a.client(victimSender).Send(ctx, envelope.New(victimSender, []string{sysVictim}, "Mật: chỉ gửi xã S14"),
		broker.File{Name: "mat.txt", Reader: strings.NewReader(secret), Size: int64(len(secret))})
	if err != nil {
		a.t.Fatal(err)
	}
	if _, err := a.admin.WaitState(ctx, res.ID, sysVictim, envelope.StateSent); err != nil {
		a.t.Fatal(err)
	}
	e, err := envelope.Open(res.Signed)
	if err != nil {
		a.t.Fatal(err)
	}
	return res.ID, e.Envelope.Attachments[0], secret
}

// TestSystemCredsReachOnlyServedAgencies: with dms-evil's real
// credentials, the mailboxes, markers and attachments of agencies it does
// not serve (a standalone one and another system's) stay out of reach,
// and so do the other system's consumers.
func TestSystemCredsReachOnlyServedAgencies(t *testing.T) {
	a := newSysArena(t)
	ctx := ctxT(t)
	sid, satt, _ := a.sysVictimMail()
	hid, _ := a.victimSend() // G22 → H14, standalone
	js := a.admin.JetStream()
	before := permSnapshot(t, js)

	nc, v := a.sysRaw(sysEvilID)
	victimTok := envelope.Token(sysVictim)
	h14Tok := envelope.Token(victimRecipient)
	other := envelope.Token(sysVictimID)
	attacks := []struct{ name, subject, body string }{
		{"another system's mailbox info", "$JS.API.CONSUMER.INFO.AXIS.sys_" + other, ""},
		{"another system's mailbox fetch", "$JS.API.CONSUMER.MSG.NEXT.AXIS.sys_" + other, `{"batch":1,"no_wait":true}`},
		{"another system's transfer fetch", "$JS.API.CONSUMER.MSG.NEXT.AXIS.xfer_" + other, `{"batch":1,"no_wait":true}`},
		{"ack on another system's mailbox", "$JS.ACK.AXIS.sys_" + other + ".1.1.1.1.1.0", "+TERM"},
		{"a standalone agency's mailbox", "$JS.API.CONSUMER.MSG.NEXT.AXIS." + record.MailboxDurable(victimRecipient), `{"batch":1,"no_wait":true}`},
		{"widen its own mailbox", "$JS.API.CONSUMER.CREATE.AXIS.sys_" + envelope.Token(sysEvilID), `{"stream_name":"AXIS","config":{"durable_name":"sys_dms-evil","filter_subject":"axis.doc.>","ack_policy":"explicit"}}`},
		{"make its own transfer consumer", "$JS.API.CONSUMER.CREATE.AXIS.xfer_" + envelope.Token(sysEvilID), `{"stream_name":"AXIS","config":{"durable_name":"xfer_dms-evil","filter_subject":"axis.doc.` + victimTok + `.*","ack_policy":"explicit"}}`},
		{"delete another system's mailbox", "$JS.API.CONSUMER.DELETE.AXIS.sys_" + other, ""},
		{"the victim's mail by direct get", "$JS.API.DIRECT.GET.AXIS", `{"last_by_subj":"axis.doc.` + victimTok + `.>"}`},
		{"the record by message get", "$JS.API.STREAM.MSG.GET.AXIS", `{"seq":1}`},
		{"a served agency's marker by direct get", "$JS.API.DIRECT.GET.KV_AXIS_RECEIVED.$KV.AXIS_RECEIVED." + victimTok + "." + sid, ""},
		{"write a marker directly", "$KV.AXIS_RECEIVED." + h14Tok + "." + hid, `{}`},
		{"publish to the record directly", "axis.doc." + h14Tok + "." + envelope.Token(sysEvil), `{}`},
		{"the tracking bucket", "$JS.API.DIRECT.GET.KV_AXIS_TRACK", `{"seq":1}`},
		{"the attachment service as the other system", "axis.svc.files." + envelope.Token(broker.SystemActor(sysVictimID)) + ".get", ""},
		{"the attachment service as the victim agency", "axis.svc.files." + victimTok + ".get", ""},
		{"the system service as the other system", record.SystemServiceSubject(sysVictimID, "marker"), ""},
		{"the tracking service as the victim agency", "axis.svc.track." + victimTok + ".tracking", `{}`},
		{"the quarantine service as the victim agency", record.QuarantineServiceSubject(sysVictim), `{}`},
	}
	for _, at := range attacks {
		t.Run(at.name, func(t *testing.T) { sysRefused(t, nc, v, at.subject, []byte(at.body)) })
	}

	// Through the bus's system service with its own subject: markers of
	// agencies it does not serve are forbidden.
	for _, key := range []string{victimTok + "." + sid, h14Tok + "." + hid, "*." + sid, ">", victimTok + ".>"} {
		for _, op := range []string{"marker", "mark"} {
			code, text := sysAsk(t, nc, record.SystemServiceSubject(sysEvilID, op), map[string]string{"Docaxis-Key": key}, []byte(`{"at":"2025-01-01T00:00:00Z"}`))
			if code != "forbidden" && code != "bad-request" {
				t.Errorf("%s %s: answered %q %q", op, key, code, text)
			}
		}
	}
	// Its quarantine forwarding for an agency it does not serve.
	if code, text := sysAsk(t, nc, record.SystemServiceSubject(sysEvilID, "q"), map[string]string{record.HeaderAgency: sysVictim}, []byte(`{}`)); code != "forbidden" {
		t.Errorf("quarantine request for %s: %q %q", sysVictim, code, text)
	}

	// Attachments: the other system's agency's, by its hash.
	evil := a.sysClient(sysEvilID)
	store := filesvc.NewStore(evil.Conn(), broker.SystemActor(sysEvilID))
	if r, _, err := store.Get(ctx, "sha256/"+satt.SHA256); err == nil {
		b, _ := io.ReadAll(r)
		r.Close()
		t.Fatalf("dms-evil read the victim's attachment: %q", b)
	} else if !errors.Is(err, filesvc.ErrForbidden) {
		t.Errorf("get the victim's attachment: %v, want forbidden", err)
	}
	// Listing the hash in an envelope of its own (to H99, its accomplice)
	// grants nothing: it never held those bytes.
	e := envelope.New(sysEvil, []string{attacker}, "Xin tệp của người khác")
	e.Attachments = []envelope.Attachment{satt}
	raw, err := a.ids[sysEvilID].ForAgency(sysEvil).Seal(e)
	if err != nil {
		t.Fatal(err)
	}
	code, text := sysAsk(t, nc, record.SystemServiceSubject(sysEvilID, "pub"), map[string]string{
		"Docaxis-Subject": record.DocSubject(attacker, sysEvil), jetstream.MsgIDHeader: e.ID + "." + envelope.Token(attacker)}, raw)
	if code != "" {
		t.Fatalf("publish its own envelope: %q %q", code, text)
	}
	if _, err := a.admin.WaitState(ctx, e.ID, attacker, envelope.StateSent); err != nil {
		t.Fatal(err)
	}
	for who, st := range map[string]interface {
		Get(context.Context, string) (io.ReadCloser, storage.Object, error)
	}{"dms-evil": store, "H99": a.client(attacker).Store()} {
		if r, _, err := st.Get(ctx, "sha256/"+satt.SHA256); err == nil {
			r.Close()
			t.Errorf("%s read the victim's attachment after dms-evil listed it in an envelope", who)
		}
	}
	// The client library refuses too.
	if _, err := evil.Mailbox(ctx, sysVictim); err == nil {
		t.Error("dms-evil opened the mailbox of an agency it does not serve")
	}

	// Nothing changed for the victims.
	after := permSnapshot(t, js)
	for _, c := range before.consumers[record.Stream] {
		got, ok := after.find(record.Stream, c.name)
		if c.name == record.MailboxDurable(attacker) {
			continue // dms-evil wrote to its accomplice
		}
		victims := c.name == record.MailboxDurable(victimRecipient) || c.name == broker.SystemDurable(sysVictimID)
		if c.durable != "" && (!ok || got.config != c.config || victims && got.pending != c.pending) {
			t.Errorf("consumer %s changed: %+v → %+v", c.name, c, got)
		}
	}
	vc := a.sysClient(sysVictimID)
	mb, err := vc.Mailbox(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if _, err := mb.Fetch(ctx, 0, time.Second, func(ctx context.Context, d *broker.Delivery) error {
		r, err := d.Open(ctx, d.Envelope.Attachments[0].Name)
		if err != nil {
			return err
		}
		r.Close()
		got = append(got, d.Envelope.ID+" "+d.Recipient)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != sid+" "+sysVictim {
		t.Fatalf("dms-victim received %v", got)
	}
}

// TestSystemServiceSpoofing: through its own system-service subject,
// dms-evil tries to publish as agencies it does not serve, under subjects
// and message ids that do not match the envelope, into other streams, and
// to have answers sent into another's inbox. Each is refused and nothing
// reaches the record or the victims.
func TestSystemServiceSpoofing(t *testing.T) {
	a := newSysArena(t)
	ctx := ctxT(t)
	vid, _, _ := a.sysVictimMail()
	nc, _ := a.sysRaw(sysEvilID)
	evilKey := a.ids[sysEvilID]
	seal := func(from string, to ...string) (*envelope.Envelope, []byte) {
		e := envelope.New(from, to, "Giả mạo")
		raw, err := evilKey.ForAgency(from).Seal(e)
		if err != nil {
			t.Fatal(err)
		}
		return e, raw
	}
	js := a.admin.JetStream()
	stream, err := js.Stream(ctx, record.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lastBefore := info.State.LastSeq

	eOwn, rawOwn := seal(sysEvil, victimRecipient)
	eAsVictim, rawAsVictim := seal(sysVictim, victimRecipient)
	eAsG22, rawAsG22 := seal(victimSender, victimRecipient)
	st := envelope.New(sysEvil, []string{victimSender}, "")
	st.Kind = envelope.KindStatus
	st.Status = &envelope.Status{Of: vid, State: envelope.StateDone}
	rawSt, stErr := evilKey.ForAgency(sysEvil).Seal(st)
	cases := []struct {
		name, subject, msgID string
		raw                  []byte
		want                 string
	}{
		{"as an agency of another system", record.DocSubject(victimRecipient, sysVictim), eAsVictim.ID + "." + envelope.Token(victimRecipient), rawAsVictim, "forbidden"},
		{"as a standalone agency", record.DocSubject(victimRecipient, victimSender), eAsG22.ID + "." + envelope.Token(victimRecipient), rawAsG22, "forbidden"},
		{"its own subject, another's envelope", record.DocSubject(victimRecipient, sysEvil), eAsVictim.ID + "." + envelope.Token(victimRecipient), rawAsVictim, "forbidden"},
		{"its envelope to another recipient", record.DocSubject(attacker2, sysEvil), eOwn.ID + "." + envelope.Token(attacker2), rawOwn, "bad-request"},
		{"another envelope's message id", record.DocSubject(victimRecipient, sysEvil), vid + "." + envelope.Token(victimRecipient), rawOwn, "bad-request"},
		{"a message id without the recipient", record.DocSubject(victimRecipient, sysEvil), eOwn.ID, rawOwn, "bad-request"},
		{"no message id", record.DocSubject(victimRecipient, sysEvil), "", rawOwn, "bad-request"},
		{"a document as a status", record.StatusSubject(victimRecipient, sysEvil), eOwn.ID, rawOwn, "bad-request"},
		{"a wildcard subject", "axis.doc.*." + envelope.Token(sysEvil), eOwn.ID + "." + envelope.Token(victimRecipient), rawOwn, "bad-request"},
		{"a full wildcard", "axis.doc.>", eOwn.ID + "." + envelope.Token(victimRecipient), rawOwn, "bad-request"},
		{"the directory bucket", "$KV.AXIS_DIRECTORY.agency." + envelope.Token(sysEvil), eOwn.ID, rawOwn, "bad-request"},
		{"the received markers", "$KV.AXIS_RECEIVED." + envelope.Token(victimRecipient) + "." + vid, eOwn.ID, rawOwn, "bad-request"},
		{"the tracking bucket", "$KV.AXIS_TRACK.x", eOwn.ID, rawOwn, "bad-request"},
		{"the JetStream API", "$JS.API.STREAM.PURGE.AXIS", eOwn.ID, rawOwn, "bad-request"},
		{"garbage for an envelope", record.DocSubject(victimRecipient, sysEvil), eOwn.ID + "." + envelope.Token(victimRecipient), []byte(`{"from":"x"}`), "forbidden"},
	}
	if stErr == nil {
		cases = append(cases, struct {
			name, subject, msgID string
			raw                  []byte
			want                 string
		}{"a status of a document it never received, to its sender", record.StatusSubject(victimSender, sysEvil), st.ID, rawSt, ""})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{"Docaxis-Subject": tc.subject}
			if tc.msgID != "" {
				h[jetstream.MsgIDHeader] = tc.msgID
			}
			code, text := sysAsk(t, nc, record.SystemServiceSubject(sysEvilID, "pub"), h, tc.raw)
			if tc.want == "" {
				// Recorded (it is its own, signed status), but judged by
				// the tracker like any agency's: it changes nothing of
				// the victim's pair.
				return
			}
			if code != tc.want {
				t.Fatalf("answered %q %q, want %q", code, text, tc.want)
			}
		})
	}
	// The record holds nothing of the forged copies.
	for _, id := range []string{eAsVictim.ID, eAsG22.ID, eOwn.ID} {
		if _, err := a.admin.Tracking(ctx, id, victimRecipient); err == nil {
			t.Errorf("forged envelope %s is tracked at H14", id)
		}
	}
	msg, err := stream.GetLastMsgForSubject(ctx, "axis.doc."+envelope.Token(victimRecipient)+".*")
	if err == nil && msg.Sequence > lastBefore {
		t.Errorf("a copy for H14 was recorded at %d: %s", msg.Sequence, msg.Subject)
	}
	if tr, err := a.admin.Tracking(ctx, vid, sysVictim); err != nil || tr.State != envelope.StateSent {
		t.Errorf("victim's pair: %+v %v", tr, err)
	}

	// Reply subjects into another's inbox: the bus drops the request
	// unanswered; H14 listening on its own inbox hears nothing.
	h14, _ := a.raw(victimRecipient)
	heard, err := h14.SubscribeSync(auth.InboxPrefix(victimRecipient) + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := h14.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, reply := range []string{auth.InboxPrefix(victimRecipient) + ".x", auth.InboxPrefix(broker.SystemActor(sysVictimID)) + ".x", "axis.doc." + envelope.Token(victimRecipient) + ".x", "_INBOX_.x"} {
		m := nats.NewMsg(record.SystemServiceSubject(sysEvilID, "marker"))
		m.Reply = reply
		m.Header.Set("Docaxis-Key", envelope.Token(sysEvil)+"."+vid)
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	// A request with its own inbox, after those: answered, so the bus read
	// the ones before.
	if code, _ := sysAsk(t, nc, record.SystemServiceSubject(sysEvilID, "marker"), map[string]string{"Docaxis-Key": envelope.Token(sysEvil) + "." + vid}, nil); code != "not-found" {
		t.Fatalf("own marker request: %q", code)
	}
	if err := h14.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := heard.NextMsg(0); err == nil {
		t.Fatalf("H14's inbox got %s %q", m.Subject, m.Data)
	}
	// The stream holds no forged message on the reply subjects either.
	if msg, err := stream.GetLastMsgForSubject(ctx, "axis.doc."+envelope.Token(victimRecipient)+".x"); err == nil {
		t.Fatalf("recorded %s", msg.Subject)
	}
}

// TestAgencyCredsOnSystemService: an agency's own credentials cannot
// reach any system's service subject, nor write the directory (its
// bindings, its system), through NATS or the client library.
func TestAgencyCredsOnSystemService(t *testing.T) {
	a := newSysArena(t)
	ctx := ctxT(t)
	nc, v := a.raw(attacker)
	for _, s := range []string{
		record.SystemServiceSubject(sysVictimID, "pub"), record.SystemServiceSubject(sysEvilID, "marker"),
		record.SystemServiceSubject(sysVictimID, "mark"), record.SystemServiceSubject(sysVictimID, "q"),
		"axis.svc.sys." + envelope.Token(attacker) + ".pub", "axis.svc.sys.*.pub", "axis.svc.sys.>",
		"$JS.API.CONSUMER.MSG.NEXT.AXIS.sys_" + envelope.Token(sysVictimID),
		"$JS.API.CONSUMER.INFO.AXIS.xfer_" + envelope.Token(sysVictimID),
		// The directory: its own entry, with a system and a binding.
		"$KV.AXIS_DIRECTORY.agency." + envelope.Token(attacker),
		"$KV.AXIS_DIRECTORY.agency." + envelope.Token(sysVictim),
		"$KV.AXIS_DIRECTORY.system." + envelope.Token(sysEvilID),
		"$JS.API.STREAM.MSG.DELETE.KV_AXIS_DIRECTORY",
		"$JS.API.STREAM.PURGE.KV_AXIS_DIRECTORY",
	} {
		t.Run(s, func(t *testing.T) {
			sysRefused(t, nc, v, s, []byte(`{"code":"000.00.00.H99","name":"x","system":"dms-evil"}`))
		})
	}
	// A system's credentials may not write the directory either.
	snc, sv := a.sysRaw(sysEvilID)
	for _, s := range []string{"$KV.AXIS_DIRECTORY.agency." + envelope.Token(sysVictim), "$KV.AXIS_DIRECTORY.agency." + envelope.Token(attacker),
		"$KV.AXIS_DIRECTORY.system." + envelope.Token(sysVictimID)} {
		t.Run("system "+s, func(t *testing.T) {
			sysRefused(t, snc, sv, s, []byte(`{"code":"000.00.01.S14","name":"x","system":"dms-evil"}`))
		})
	}
	// The client library, with H99's and dms-evil's credentials.
	binding, err := a.bus.CA.SignBinding(signing.Binding{Agency: attacker, System: sysEvilID})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*broker.Client{"H99": a.client(attacker), "dms-evil": a.sysClient(sysEvilID)} {
		// A refused write goes unanswered: the client waits for nothing.
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		err := c.RegisterAgency(ctx, broker.Agency{Code: attacker, Name: "H99", System: sysEvilID, Bindings: []string{binding}})
		if err == nil {
			t.Errorf("%s registered a directory entry", name)
		}
		if err := c.RegisterSystem(ctx, broker.System{ID: "dms-x", Name: "x", Certificate: string(signing.EncodeCerts(a.ids[sysEvilID].Chain...))}); err == nil {
			t.Errorf("%s registered a system", name)
		}
	}
	for _, code := range []string{attacker, sysVictim} {
		e, err := a.admin.LookupAgency(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		if code == attacker && (e.System != "" || len(e.Bindings) != 0) || code == sysVictim && e.System != sysVictimID {
			t.Errorf("entry %s changed: %+v", code, e)
		}
	}
}

// TestSystemCertificateWithoutBinding: a system's certificate signs for
// an agency that no binding gives it, or under a binding signed by a
// foreign CA; the recipient refuses (invalid receipt, quarantine), and the
// bus refuses to store a foreign binding in the directory.
func TestSystemCertificateWithoutBinding(t *testing.T) {
	a := newSysArena(t)
	ctx := ctxT(t)
	evilKey := a.ids[sysEvilID]
	// H99 (standalone, attacker) publishes with its own credentials an
	// envelope from itself signed by dms-evil's certificate: no binding
	// gives H99 to dms-evil. And one from sysVictim, whose binding names
	// dms-victim.
	nc, _ := a.raw(attacker)
	for _, from := range []string{attacker} {
		e := envelope.New(from, []string{victimRecipient}, "Ký bằng chứng thư hệ thống không được gán")
		raw, err := evilKey.ForAgency(from).Seal(e)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(record.DocSubject(victimRecipient, from))
		m.Header.Set(jetstream.MsgIDHeader, e.ID+"."+envelope.Token(victimRecipient))
		m.Data = raw
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("publish as %s: %v", from, err)
		}
	}
	h14 := a.client(victimRecipient)
	mb, err := h14.Mailbox(ctx, victimRecipient, broker.OnOutcome(func(o broker.Outcome) {
		if o.Verified {
			t.Errorf("H14 accepted %+v", o)
		} else if !o.Quarantined && !o.Retry {
			t.Logf("outcome %+v", o)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	n, err := mb.Fetch(ctx, 0, time.Second, func(context.Context, *broker.Delivery) error { return nil })
	if err != nil || n != 0 {
		t.Fatalf("H14 handed %d, %v", n, err)
	}
	// The verifier alone, as a recipient runs it: ErrNotServed.
	e := envelope.New(sysVictim, []string{victimRecipient}, "Ký cho xã của hệ thống khác")
	raw, err := evilKey.ForAgency(sysVictim).Seal(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h14.Verifier().Verify(raw); !errors.Is(err, signing.ErrNotServed) {
		t.Fatalf("dms-evil signing for %s verified: %v", sysVictim, err)
	}

	// A binding signed by a foreign CA does not enter the directory.
	foreign, err := signing.NewCA("CA lạ", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := foreign.SignBinding(signing.Binding{Agency: attacker, System: sysEvilID})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := a.admin.LookupAgency(ctx, attacker)
	if err != nil {
		t.Fatal(err)
	}
	err = a.admin.RegisterAgency(ctx, broker.Agency{Code: attacker, Name: cur.Name, System: sysEvilID, Bindings: []string{fb}})
	if !errors.Is(err, signing.ErrUntrusted) {
		t.Fatalf("register with a foreign binding: %v", err)
	}
	// And a verifier whose directory held one would not take it: the
	// binding must be signed by the CA that issued the system's
	// certificate. A system certificate of the foreign CA, with a binding
	// of the foreign CA, is untrusted outright.
	fsys, err := foreign.IssueSystem(sysEvilID, "giả", signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e2 := envelope.New(attacker, []string{victimRecipient}, "Chứng thư hệ thống của CA lạ")
	raw2, err := fsys.ForAgency(attacker).Seal(e2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h14.Verifier().Verify(raw2); !errors.Is(err, signing.ErrUntrusted) {
		t.Fatalf("foreign system certificate: %v", err)
	}
}
