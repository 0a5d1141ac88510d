package filesvc_test

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/docaxis/docaxis/storage/storagetest"
	"github.com/nats-io/nats.go"
)

// rawClient speaks the protocol by hand, to send what NewStore never
// would.
type rawClient struct {
	t  *testing.T
	nc *nats.Conn
}

func msg(subject string, data []byte, kv ...string) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	for i := 0; i+1 < len(kv); i += 2 {
		m.Header.Set(kv[i], kv[i+1])
	}
	return m
}

// ask sends m as a request and returns the answer.
func (r rawClient) ask(m *nats.Msg) *nats.Msg {
	r.t.Helper()
	ans, err := r.nc.RequestMsg(m, 5*time.Second)
	if err != nil {
		r.t.Fatalf("%s: %v", m.Subject, err)
	}
	return ans
}

// wantError checks that ans is an error answer with code whose text has
// every one of want.
func wantError(t *testing.T, what string, ans *nats.Msg, code string, want ...string) {
	t.Helper()
	if k := ans.Header.Get("Axis-File-Msg"); k != "error" {
		t.Errorf("%s: answer is %q (%s), want an error", what, k, ans.Data)
		return
	}
	t.Logf("%s: %s: %s", what, ans.Header.Get("Axis-File-Error"), ans.Data)
	if got := ans.Header.Get("Axis-File-Error"); got != code {
		t.Errorf("%s: error code %q (%s), want %q", what, got, ans.Data, code)
	}
	for _, w := range want {
		if !strings.Contains(string(ans.Data), w) {
			t.Errorf("%s: error %q does not say %q", what, ans.Data, w)
		}
	}
}

// open starts an upload by hand and returns its inbox subscription and
// transfer subject.
func (r rawClient) open(token string) (*nats.Subscription, string) {
	r.t.Helper()
	inbox := r.nc.NewInbox()
	sub, err := r.nc.SubscribeSync(inbox)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { sub.Unsubscribe() })
	m := msg("axis.svc.files."+token+".put", nil, "Axis-File-Msg", "request", "Axis-File-Size", "-1", "Axis-File-Window", "8")
	m.Reply = inbox
	if err := r.nc.PublishMsg(m); err != nil {
		r.t.Fatal(err)
	}
	ready := r.next(sub)
	if k := ready.Header.Get("Axis-File-Msg"); k != "ready" {
		r.t.Fatalf("put: answer %q (%s), want ready", k, ready.Data)
	}
	return sub, ready.Header.Get("Axis-File-Transfer")
}

func (r rawClient) next(sub *nats.Subscription) *nats.Msg {
	r.t.Helper()
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		r.t.Fatalf("waiting on %s: %v", sub.Subject, err)
	}
	return m
}

// chunk sends chunk seq of an upload with sub's inbox as reply.
func (r rawClient) chunk(sub *nats.Subscription, subject string, seq int, data []byte) {
	r.t.Helper()
	m := msg(subject, data, "Axis-File-Msg", "chunk", "Axis-File-Seq", strconv.Itoa(seq))
	m.Reply = sub.Subject
	if err := r.nc.PublishMsg(m); err != nil {
		r.t.Fatal(err)
	}
}

// untilError skips acknowledgements and returns the error that ends the
// transfer.
func (r rawClient) untilError(sub *nats.Subscription) *nats.Msg {
	r.t.Helper()
	for {
		m := r.next(sub)
		if m.Header.Get("Axis-File-Msg") != "ack" {
			return m
		}
	}
}

// TestBadInput: malformed requests and transfer messages get clear
// errors and leave the service working.
func TestBadInput(t *testing.T) {
	const maxSize = 1 << 20
	e := start(t, filesvc.Config{MaxSize: maxSize, RatePerSecond: -1})
	ctx := bustest.Context(t, time.Minute)
	r := rawClient{t: t, nc: e.connect(t, agencyA)}
	tokA, tokB := envelope.Token(agencyA), envelope.Token(agencyB)
	pre := "axis.svc.files." + tokA + "."
	key := storage.Key(sum([]byte("x")))

	for _, tt := range []struct {
		name, subject string
		kv            []string
		code          string
		want          []string
	}{
		{"unknown op", pre + "delete", []string{"Axis-File-Msg", "request", "Axis-File-Key", key}, "bad-request", []string{`unknown operation "delete"`}},
		{"transfer token as op", pre + "t", []string{"Axis-File-Msg", "request"}, "bad-request", []string{"unknown operation"}},
		{"no headers", pre + "get", nil, "bad-request", []string{"Axis-File-Msg"}},
		{"wrong kind", pre + "get", []string{"Axis-File-Msg", "chunk", "Axis-File-Key", key}, "bad-request", []string{`"chunk"`}},
		{"no key", pre + "get", []string{"Axis-File-Msg", "request"}, "bad-request", []string{"Axis-File-Key missing"}},
		{"bad key", pre + "get", []string{"Axis-File-Msg", "request", "Axis-File-Key", "sha256/XYZ"}, "invalid-key", []string{"sha256/XYZ"}},
		{"path key", pre + "stat", []string{"Axis-File-Msg", "request", "Axis-File-Key", "../" + key}, "invalid-key", nil},
		{"bad size", pre + "put", []string{"Axis-File-Msg", "request", "Axis-File-Size", "lots"}, "bad-request", []string{"Axis-File-Size", "lots"}},
		{"negative size", pre + "put", []string{"Axis-File-Msg", "request", "Axis-File-Size", "-5"}, "bad-request", []string{"-5"}},
		{"zero window", pre + "put", []string{"Axis-File-Msg", "request", "Axis-File-Window", "0"}, "bad-request", []string{"Axis-File-Window"}},
		{"version", pre + "put", []string{"Axis-File-Msg", "request", "Axis-File-Version", "2"}, "bad-request", []string{"version"}},
		{"announced too large", pre + "put", []string{"Axis-File-Msg", "request", "Axis-File-Size", "2097152"}, "too-large", []string{"2097152"}},
		{"bad token", "axis.svc.files.a__b.stat", []string{"Axis-File-Msg", "request", "Axis-File-Key", key}, "bad-request", []string{"agency token"}},
		{"no ref", pre + "get", []string{"Axis-File-Msg", "request", "Axis-File-Key", key}, "forbidden", []string{key, agencyA}},
	} {
		wantError(t, tt.name, r.ask(msg(tt.subject, []byte("garbage"), tt.kv...)), tt.code, tt.want...)
	}

	// Transfer messages.
	sub, subj := r.open(tokA)
	if !strings.HasPrefix(subj, pre+"t.") {
		t.Fatalf("transfer subject %q is not under %st.", subj, pre)
	}
	parts := strings.Split(subj, ".")
	inst, id := parts[5], parts[6]
	chunk := func(kv ...string) []string {
		return append([]string{"Axis-File-Msg", "chunk", "Axis-File-Seq", "1"}, kv...)
	}
	for _, tt := range []struct {
		name, subject string
		data          []byte
		kv            []string
		want          []string
	}{
		{"another agency's token", strings.Replace(subj, tokA, tokB, 1), []byte("x"), chunk(), []string{"no transfer " + id}},
		{"spoofed id", pre + "t." + inst + ".0123456789abcdef01234567", []byte("x"), chunk(), []string{"no transfer"}},
		{"not the transfer's inbox", subj, []byte("x"), chunk(), []string{"no transfer " + id}},
		{"unknown kind", subj, nil, []string{"Axis-File-Msg", "bogus"}, []string{`"bogus"`}},
		{"bad seq", subj, []byte("x"), []string{"Axis-File-Msg", "chunk", "Axis-File-Seq", "x"}, []string{"Axis-File-Seq"}},
		{"chunk too big", subj, make([]byte, filesvc.ChunkSize+1), chunk(), []string{"want 1 to"}},
		{"empty chunk", subj, nil, chunk(), []string{"want 1 to"}},
		{"eof without size", subj, nil, []string{"Axis-File-Msg", "eof", "Axis-File-Seq", "1"}, []string{"Axis-File-Size"}},
		{"too few tokens", pre + "t." + inst, []byte("x"), chunk(), []string{"want"}},
	} {
		if tt.name == "too few tokens" {
			// Not on the service's subjects: NATS says nobody listens.
			if _, err := r.nc.RequestMsg(msg(tt.subject, tt.data, tt.kv...), 2*time.Second); !errors.Is(err, nats.ErrNoResponders) {
				t.Errorf("%s: err = %v, want no responders", tt.name, err)
			}
			continue
		}
		wantError(t, tt.name, r.ask(msg(tt.subject, tt.data, tt.kv...)), "bad-request", tt.want...)
	}
	if _, err := r.nc.RequestMsg(msg(pre+"t.0000000000000000."+id, []byte("x"), chunk()...), 2*time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("chunk for an instance that does not exist: err = %v, want no responders", err)
	}

	// The transfer survived all that; out-of-order chunks end it.
	r.chunk(sub, subj, 2, []byte("x"))
	wantError(t, "chunk 2 first", r.untilError(sub), "bad-request", "chunk 2 came after chunk 0")

	// The size limit holds against a client that does not check it.
	sub, subj = r.open(tokA)
	for seq := 1; seq <= 5; seq++ {
		r.chunk(sub, subj, seq, make([]byte, filesvc.ChunkSize))
	}
	wantError(t, "upload over MaxSize", r.untilError(sub), "too-large", strconv.Itoa(maxSize))

	// An ack on an upload is a protocol breach.
	sub, subj = r.open(tokA)
	if err := r.nc.PublishMsg(msg(subj, nil, "Axis-File-Msg", "ack", "Axis-File-Seq", "1")); err != nil {
		t.Fatal(err)
	}
	wantError(t, "ack on an upload", r.untilError(sub), "bad-request", "ack sent on an upload")

	// The service still works, and the failed uploads left nothing.
	s := e.store(t, agencyA)
	data := storagetest.Bytes(11, 600<<10)
	obj, err := s.Put(ctx, bytes.NewReader(data), storage.PutOptions{Size: -1})
	if err != nil {
		t.Fatalf("Put after bad input: %v", err)
	}
	e.grant(t, obj.SHA256, agencyA)
	if _, err := s.Stat(ctx, obj.Key); err != nil {
		t.Fatalf("Stat after bad input: %v", err)
	}
	if n := e.objectCount(t); n != 1 {
		t.Errorf("%d objects, want 1", n)
	}
	e.waitNoLeftovers(t)
}

// TestTricklingUploadAbandoned: an upload kept alive with a chunk now and
// then, each just inside IdleTimeout, is abandoned once it has come slower
// than MinRate, and what it staged is removed; a steady upload under the
// same settings goes through.
func TestTricklingUploadAbandoned(t *testing.T) {
	e := start(t, filesvc.Config{IdleTimeout: 300 * time.Millisecond, MinRate: 64 << 10, RatePerSecond: -1})
	ctx := bustest.Context(t, time.Minute)
	r := rawClient{t: t, nc: e.connect(t, agencyA)}
	sub, subj := r.open(envelope.Token(agencyA))
	chunk := bytes.Repeat([]byte("x"), 1024)
	var ans *nats.Msg
	for seq := 1; seq <= 40 && ans == nil; seq++ {
		r.chunk(sub, subj, seq, chunk)
		// Each chunk is acknowledged, until the one past the bound.
		m := r.next(sub)
		if m.Header.Get("Axis-File-Msg") != "ack" {
			ans = m
			break
		}
		time.Sleep(100 * time.Millisecond) // 10 KiB/s, inside the idle timeout
	}
	if ans == nil {
		t.Fatal("a 10 KiB/s upload was never abandoned under a 64 KiB/s minimum")
	}
	wantError(t, "trickling upload", ans, "unavailable", "slower than the 65536 bytes a second", "abandoned")
	e.waitNoLeftovers(t)

	// Steady: 2 MiB as fast as the client sends.
	obj, err := e.store(t, agencyA).Put(ctx, bytes.NewReader(bytes.Repeat([]byte("y"), 2<<20)), storage.PutOptions{Size: 2 << 20})
	if err != nil {
		t.Fatalf("a steady upload under the same minimum: %v", err)
	}
	if obj.Size != 2<<20 {
		t.Fatalf("stored %d bytes", obj.Size)
	}
}
