package attacks_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/lease"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
)

// The audit chainer's lease is the bus's alone: an agency can neither take
// it (and so stop the chain being written, or write it) nor release it.
func TestClusterAttackLease(t *testing.T) {
	a := newArena(t)
	chainer := auditStartChainer(t, a)
	ctx := ctxT(t)
	for !chainer.Leading() {
		if ctx.Err() != nil {
			t.Fatal("the chainer never took its lease")
		}
		time.Sleep(20 * time.Millisecond)
	}
	nc, _ := a.raw(attacker)
	subject := "$KV." + lease.Bucket + "." + audit.LeaseDuty
	for _, try := range []struct {
		name string
		msg  *nats.Msg
	}{
		{"put", &nats.Msg{Subject: subject, Data: []byte(attacker)}},
		{"delete", &nats.Msg{Subject: subject, Header: nats.Header{"KV-Operation": []string{"DEL"}}}},
		{"purge", &nats.Msg{Subject: subject, Header: nats.Header{"KV-Operation": []string{"PURGE"}, "Nats-Rollup": []string{"sub"}}}},
		{"stream info", &nats.Msg{Subject: "$JS.API.STREAM.INFO.KV_" + lease.Bucket}},
		{"direct get", &nats.Msg{Subject: "$JS.API.DIRECT.GET.KV_" + lease.Bucket + "." + subject}},
	} {
		// A refused request is not answered: the short wait is the refusal.
		rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := nc.RequestMsgWithContext(rctx, try.msg)
		cancel()
		if err == nil {
			t.Errorf("%s on the chainer's lease answered to agency %s", try.name, attacker)
		}
	}
	js := a.admin.JetStream()
	kv, err := js.KeyValue(ctx, lease.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, audit.LeaseDuty)
	if err != nil {
		t.Fatalf("lease after the attacks: %v", err)
	}
	if strings.Contains(string(e.Value()), attacker) || !chainer.Leading() {
		t.Fatalf("lease held by %q, chainer leading %v", e.Value(), chainer.Leading())
	}
}

// While the tracker is behind (every serve down), status is read from the
// record, and still only by the envelope's sender and recipients: an
// attacker asking, or publishing a copy of its own under the victim's id
// first, learns nothing.
func TestClusterAttackStatusFromRecord(t *testing.T) {
	a := newArena(t)
	id := a.statusSendUntracked()
	// The attacker signs its own envelope under the victim's id, to its
	// own colleague and to the victim's recipient.
	a.statusForgeID(id, "Giả mạo mã")
	a.statusWantNotFound(id)
	a.statusWantVictims(id, a.client(victimRecipient))
}

// A resumed download (Axis-File-Offset) is checked like any other: an
// attachment the agency may not read is forbidden whatever the offset (its
// size is not revealed by an offset past its end), and a malformed offset
// is refused.
func TestClusterAttackFileOffset(t *testing.T) {
	a := newArena(t)
	_, secret := a.victimSend()
	sum := sha256.Sum256([]byte(secret))
	key := storage.Key(hex.EncodeToString(sum[:]))
	nc, _ := a.raw(attacker)
	ask := func(offset string) nats.Header {
		m := nats.NewMsg("axis.svc.files." + envelope.Token(attacker) + ".get")
		m.Header.Set("Axis-File-Msg", "request")
		m.Header.Set("Axis-File-Version", "1")
		m.Header.Set("Axis-File-Key", key)
		m.Header.Set("Axis-File-Window", "1")
		m.Header.Set("Axis-File-Offset", offset)
		rctx, cancel := context.WithTimeout(ctxT(t), 5*time.Second)
		defer cancel()
		resp, err := nc.RequestMsgWithContext(rctx, m)
		if err != nil {
			t.Fatalf("get at offset %q: %v", offset, err)
		}
		return resp.Header
	}
	for offset, want := range map[string]string{
		"0":                   "forbidden",
		"5":                   "forbidden",
		"999999999999":        "forbidden",
		"-1":                  "bad-request",
		"abc":                 "bad-request",
		"9223372036854775808": "bad-request",
	} {
		h := ask(offset)
		if h.Get("Axis-File-Msg") != "error" || h.Get("Axis-File-Error") != want {
			t.Errorf("get of the victim's attachment at offset %q as %s: %v; want error %s", offset, attacker, h, want)
		}
	}
	// The victim's recipient resumes at an offset past the end: refused,
	// not served from byte 0.
	rnc, _ := a.raw(victimRecipient)
	m := nats.NewMsg("axis.svc.files." + envelope.Token(victimRecipient) + ".get")
	for k, v := range map[string]string{"Axis-File-Msg": "request", "Axis-File-Version": "1", "Axis-File-Key": key, "Axis-File-Window": "1", "Axis-File-Offset": "999999"} {
		m.Header.Set(k, v)
	}
	resp, err := rnc.RequestMsg(m, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Axis-File-Error") != "bad-request" {
		t.Errorf("recipient's get past the end: %v; want bad-request", resp.Header)
	}
}
