package attacks_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// rawLeaf speaks the leaf node protocol itself, as a hostile member's
// operator can (a patched server, or a few lines of code): it answers
// what the national asks of the member's account as it likes.
type rawLeaf struct {
	t    *testing.T
	conn net.Conn
	mu   sync.Mutex
}

func (l *rawLeaf) send(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.conn.Write([]byte(s)); err != nil {
		l.t.Log("raw leaf write:", err)
	}
}

// dialRawLeaf links to the national with a member's link credentials and
// calls onMsg with each message the national sends down the link.
func dialRawLeaf(t *testing.T, leafURL, creds string, onMsg func(l *rawLeaf, subject, reply string)) *rawLeaf {
	t.Helper()
	u, err := url.Parse(leafURL)
	if err != nil {
		t.Fatal(err)
	}
	contents, err := os.ReadFile(creds)
	if err != nil {
		t.Fatal(err)
	}
	userJWT, err := nkeys.ParseDecoratedJWT(contents)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.ParseDecoratedNKey(contents)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReaderSize(c, 1<<20)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("leaf INFO: %q %v", line, err)
	}
	var info struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(line), "INFO ")), &info); err != nil {
		t.Fatal(err)
	}
	sig, err := kp.Sign([]byte(info.Nonce))
	if err != nil {
		t.Fatal(err)
	}
	connect, _ := json.Marshal(map[string]any{"jwt": userJWT, "sig": base64.RawURLEncoding.EncodeToString(sig), "name": "raw-leaf",
		"server_id": "NRAWLEAF", "headers": true, "protocol": 1})
	l := &rawLeaf{t: t, conn: c}
	l.send("CONNECT " + string(connect) + "\r\nPING\r\n")
	go func() {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(strings.TrimRight(line, "\r\n"))
			if len(f) == 0 {
				continue
			}
			switch f[0] {
			case "PING":
				l.send("PONG\r\n")
			case "LMSG", "HMSG":
				total, _ := strconv.Atoi(f[len(f)-1])
				if _, err := io.ReadFull(r, make([]byte, total+2)); err != nil {
					return
				}
				reply := ""
				if (f[0] == "LMSG" && len(f) >= 4) || (f[0] == "HMSG" && len(f) >= 5) {
					reply = f[2]
				}
				onMsg(l, f[1], reply)
			}
		}
	}()
	return l
}

// H41's operator takes its bus down and answers the national's pulls on
// its outbound consumer itself, with made-up deliveries whose ack
// subjects (written by H41) say what no server says: delivered 0 times,
// at stream sequence 0, or delivered 2^64-1 times. Each carries an
// envelope whose trace names a bus the national does not know, an error
// the national would look at again later. The national must neither fall
// over (a retry delay indexed by the delivery count once panicked and
// took the national bus down) nor act on them, and keeps serving.
func TestFederationForgedPullAnswers(t *testing.T) {
	a := newLinkArena(t)
	e := envelope.New(attacker2, []string{victimRecipient}, "Trả lời giả")
	raw, err := a.h41.Identity(attacker2).Seal(e)
	if err != nil {
		t.Fatal(err)
	}
	id := a.hostileBusID()
	id.Bus = "NOSUCHBUS"
	copyID := e.ID + "." + envelope.Token(victimRecipient)
	h := nats.Header{}
	h.Set(jetstream.MsgIDHeader, copyID)
	h.Set(record.HeaderEnvelope, e.ID)
	linkForgeHop(t, h, id, time.Now(), e.ID, copyID, raw)
	var hb strings.Builder
	hb.WriteString("NATS/1.0\r\n")
	for k, vs := range h {
		for _, v := range vs {
			hb.WriteString(k + ": " + v + "\r\n")
		}
	}
	hb.WriteString("\r\n")
	hdr := hb.String()
	subject := "axis.fedout." + linkVictim + ".doc." + envelope.Token(victimRecipient) + "." + envelope.Token(attacker2)
	// $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
	forged := []string{
		"0.1.1",                    // delivered 0 times
		"1.0.1",                    // at stream sequence 0
		"18446744073709551615.1.1", // delivered 2^64-1 times
	}

	a.h41.StopBus()
	var answered atomic.Int32
	onMsg := func(l *rawLeaf, subj, reply string) {
		switch {
		case strings.Contains(subj, "API.CONSUMER.INFO."+federation.OutStream):
			resp := fmt.Sprintf(`{"type":"io.nats.jetstream.api.v1.consumer_info_response","stream_name":%q,"name":"fed_up","created":"2024-01-01T00:00:00Z","config":{"durable_name":"fed_up","deliver_policy":"all","ack_policy":"explicit","replay_policy":"instant","max_ack_pending":256},"delivered":{"consumer_seq":0,"stream_seq":0},"ack_floor":{"consumer_seq":0,"stream_seq":0},"num_ack_pending":0,"num_redelivered":0,"num_waiting":0,"num_pending":1}`, federation.OutStream)
			l.send(fmt.Sprintf("LMSG %s %d\r\n%s\r\n", reply, len(resp), resp))
		case strings.Contains(subj, "API.CONSUMER.MSG.NEXT."+federation.OutStream):
			n := int(answered.Load())
			if n >= len(forged) {
				return
			}
			ack := fmt.Sprintf("$JS.ACK.%s.HASH.%s.fed_up.%s.%d.0.x@%s", linkHostile, federation.OutStream, forged[n], time.Now().UnixNano(), subject)
			l.send(fmt.Sprintf("HMSG %s %s %d %d\r\n%s%s\r\n", reply, ack, len(hdr), len(hdr)+len(raw), hdr, raw))
			answered.Add(1)
		}
	}
	eventually(t, "the raw leaf linked", func() error {
		l := dialRawLeaf(t, a.vn.LeafURL(), a.h41.UplinkCreds(), onMsg)
		time.Sleep(500 * time.Millisecond)
		for _, li := range a.leafsOf() {
			if li.Name == "raw-leaf" {
				l.send("LS+ $JS." + linkHostile + ".API.CONSUMER.INFO." + federation.OutStream + ".fed_up\r\n")
				l.send("LS+ $JS." + linkHostile + ".API.CONSUMER.MSG.NEXT." + federation.OutStream + ".fed_up\r\n")
				return nil
			}
		}
		l.conn.Close()
		return fmt.Errorf("not linked yet")
	})
	eventually(t, "every forged delivery handed to the national", func() error {
		if n := int(answered.Load()); n < len(forged) {
			return fmt.Errorf("%d of %d", n, len(forged))
		}
		return nil
	})
	// The national handles an answer as it comes, long before it pulls
	// again (its pulls last seconds): by now it has handled the first two.
	ctx := linkCtx(t)
	eventually(t, "the national still serving its federation", func() error {
		st, err := a.vn.Fed.Status(ctx)
		if err != nil {
			return err
		}
		if st == nil {
			return fmt.Errorf("no status")
		}
		return nil
	})
	if _, err := a.c14.Status(ctx, e.ID); err == nil {
		t.Fatalf("the forged copy is on H14's record")
	}
}
