package attacks_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Attacks on the record schema's entry points: the one subject parser
// (reached by a system naming the subject of what it publishes), the one
// quarantine writer (reached by a hostile bus of a federation whose
// message is refused), and the one rate limiter (reached by an agency's
// HTTP requests).

// TestNamesSystemMalformedRecordSubjects: a hostile system names, for a
// copy it publishes through the bus's system service, subjects that are
// not exactly axis.<doc|status>.<to>.<from>: empty tokens, a token too
// many or too few, other kinds under axis. Each is refused as a bad
// request and nothing reaches the record.
func TestNamesSystemMalformedRecordSubjects(t *testing.T) {
	a := newSysArena(t)
	ctx := ctxT(t)
	nc, _ := a.sysRaw(sysEvilID)
	e := envelope.New(sysEvil, []string{victimRecipient}, "Chủ đề méo")
	raw, err := a.ids[sysEvilID].ForAgency(sysEvil).Seal(e)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := a.admin.JetStream().Stream(ctx, record.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	to, from := envelope.Token(victimRecipient), envelope.Token(sysEvil)
	for _, subject := range []string{
		"axis.doc." + to + ".",
		"axis.doc.." + from,
		"axis.doc..",
		"axis.doc." + to,
		"axis.doc." + to + "." + from + ".x",
		"axis.doc." + to + "." + from + ".",
		"axis.status." + envelope.Token(victimSender) + "." + from + ".x",
		"axis.evt.track." + to,
		"axis.quarantine." + to,
		"axis.svc.quarantine." + from,
		"axis.Doc." + to + "." + from,
		"AXIS.doc." + to + "." + from,
		"axis.doc.*." + from,
		"axis.doc." + to + ".>",
		"axis.doc." + to + "\r\n." + from,
	} {
		t.Run(strconv.Quote(subject), func(t *testing.T) {
			h := map[string]string{"Docaxis-Subject": subject, jetstream.MsgIDHeader: record.DocMsgID(e.ID, victimRecipient)}
			code, text := sysAsk(t, nc, record.SystemServiceSubject(sysEvilID, "pub"), h, raw)
			if code != "bad-request" {
				t.Fatalf("answered %q %q, want bad-request", code, text)
			}
		})
	}
	after, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.State.LastSeq != info.State.LastSeq {
		m, _ := stream.GetMsg(ctx, after.State.LastSeq)
		t.Fatalf("the record grew from seq %d to %d (last: %+v)", info.State.LastSeq, after.State.LastSeq, m)
	}
	if _, err := a.admin.Tracking(ctx, e.ID, victimRecipient); err == nil {
		t.Fatalf("envelope %s on a malformed subject is tracked", e.ID)
	}
}

// TestNamesFederationQuarantineHeadersAreTheBus: a hostile member bus
// writes, past its CLI, into its own outbound stream a copy the national
// refuses, carrying the quarantine's own headers with lies: another
// envelope's id (the victim's, so that an operator retrying "that
// envelope" would pick the attacker's entry), a reason saying all is
// well, another origin stream and sequence, another box. The national's
// quarantine entry says only what the national derived.
func TestNamesFederationQuarantineHeadersAreTheBus(t *testing.T) {
	vn := bustest.StartNational(t, "VN")
	h41 := bustest.StartMember(t, "H41", vn)
	vn.Bind("VN", "*.*.*.G*")
	vn.Bind("H41", "*.*.*.H41")
	vn.AddAgency(victimSender, cast[victimSender])
	h41.AddAgency(attacker2, cast[attacker2])
	ctx := ctxT(t)

	victimID := envelope.NewID()
	subject := "axis.fedout." + vn.ID + ".doc." + envelope.Token(victimSender) + "." + envelope.Token(attacker2)
	m := &nats.Msg{Subject: subject, Data: []byte(`{"from":"` + attacker2 + `","note":"not an envelope"}`), Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, "names."+envelope.NewID())
	m.Header.Set(record.HeaderEnvelope, victimID)
	m.Header.Set(record.HeaderReason, "accepted by the national bus")
	m.Header.Set(record.HeaderOriginStream, record.Stream)
	m.Header.Set(record.HeaderOriginSeq, "1")
	m.Header.Set(record.HeaderOriginSubject, record.DocSubject(victimRecipient, victimSender))
	m.Header.Set(record.HeaderAgency, victimRecipient)
	m.Header.Set(record.HeaderDeliveries, "0")
	if _, err := h41.Service.Client.JetStream().PublishMsg(ctx, m, jetstream.WithExpectStream(federation.OutStream)); err != nil {
		t.Fatal(err)
	}

	var entry *broker.Quarantined
	eventually(t, "the national quarantines H41's copy", func() error {
		list, err := vn.Service.Client.QuarantineList(context.Background(), record.FederationBox)
		if err != nil {
			return err
		}
		for i := range list {
			if list[i].Subject == subject {
				entry = &list[i]
				return nil
			}
		}
		return errors.New("not yet")
	})
	switch {
	case entry.Envelope != "":
		t.Errorf("entry names envelope %q (H41 claimed %s)", entry.Envelope, victimID)
	case entry.Reason == "accepted by the national bus" || entry.Reason == "":
		t.Errorf("entry's reason is %q", entry.Reason)
	case entry.Agency != record.FederationBox:
		t.Errorf("entry is in box %q", entry.Agency)
	case entry.OriginSeq <= 1 && entry.Deliveries == 0:
		t.Errorf("entry's origin is H41's claim: seq %d, %d deliveries", entry.OriginSeq, entry.Deliveries)
	}
	qs, err := vn.Service.Client.JetStream().Stream(ctx, record.QuarantineStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := qs.GetMsg(ctx, entry.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if got := raw.Header.Get(record.HeaderOriginStream); got == record.Stream || got == "" {
		t.Errorf("entry's origin stream is %q", got)
	}
	if got := raw.Header.Values(record.HeaderEnvelope); len(got) != 0 {
		t.Errorf("entry keeps envelope header %q", got)
	}
	// The victim's envelope id finds no entry of H41's to retry.
	if _, err := vn.Service.Client.QuarantineEntry(ctx, victimID); !errors.Is(err, broker.ErrNotQuarantined) {
		t.Errorf("quarantine entry by the victim's id: %v", err)
	}
}

// TestNamesRateLimitPerAgency: an attacker exhausting its own HTTP rate
// gets 429 with Retry-After, and neither the victim nor another attacker
// loses a request to it: every agency has a bucket of its own.
func TestNamesRateLimitPerAgency(t *testing.T) {
	a := newArena(t)
	limited := false
	for i := 0; i < 1000 && !limited; i++ {
		resp, body := a.do(attacker, "GET", "/v1/me", nil)
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			limited = true
			if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
			}
			var e struct {
				Code string `json:"code"`
			}
			if json.Unmarshal(body, &e) != nil || e.Code == "" {
				t.Errorf("429 body %s", body)
			}
		default:
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if !limited {
		t.Fatal("1000 requests in a row were never rate-limited")
	}
	for _, code := range []string{victimSender, victimRecipient, attacker2} {
		if resp, body := a.do(code, "GET", "/v1/me", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s after %s's flood: %d %s", code, attacker, resp.StatusCode, body)
		}
	}
	if resp, _ := a.do(attacker, "GET", "/v1/me", nil); resp.StatusCode != http.StatusTooManyRequests {
		// Not a timing assertion: the bucket refills at 20/s, so this one
		// may pass; report it only for the record.
		t.Logf("%s's next request: %d", attacker, resp.StatusCode)
	}
}
