package attacks_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/auth"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// Federation links attacked by the operator of a member bus (H41), with
// that bus's own leaf credentials, its own bus key and plain NATS clients:
// three buses on loopback. VN is the national bus (agencies G22, the
// victim sender, and H99, an ordinary agency of the national), H14 the
// victim recipient's bus, H41 the hostile member.

const (
	linkNational = "VN"
	linkVictim   = "H14"
	linkHostile  = "H41"
	// linkWait is the arena's bound on waiting for attachment parts.
	linkWait = 20 * time.Second
	// linkQuota is the arena's quota of a member's link account, and
	// linkRelayQuota of a member's share of the national's relay.
	linkQuota      = 16 << 20
	linkRelayQuota = 8 << 20
	// linkHeapBound bounds the growth of the test process's heap while the
	// national takes a flood larger than it.
	linkHeapBound = 192 << 20
)

type linkArena struct {
	t            *testing.T
	vn, h14, h41 *bustest.FedBus
	// admin clients of each bus (bus credentials, all its identities)
	cvn, c14, c41 *broker.Client
}

func linkCtx(t testing.TB) context.Context { return bustest.Context(t, 3*time.Minute) }

func newLinkArena(t *testing.T) *linkArena {
	t.Helper()
	cfg := func(c *federation.Config) {
		c.AttachmentWait = linkWait
		c.LinkQuota = linkQuota
		c.RelayQuota = linkRelayQuota
	}
	a := &linkArena{t: t}
	a.vn = bustest.StartNationalWith(t, linkNational, cfg)
	a.h14 = bustest.StartMemberWith(t, linkVictim, a.vn, cfg)
	// H41's CA has been in use for three months: its operator can issue
	// certificates (its bus's, its agencies') valid since then.
	a.h41 = bustest.StartMemberWith(t, linkHostile, a.vn, cfg, bustest.WithCA(linkOldCA(t, "docaxis CA "+linkHostile)))
	a.vn.AddAgency(victimSender, cast[victimSender])
	a.vn.AddAgency(attacker, cast[attacker])
	a.h14.AddAgency(victimRecipient, cast[victimRecipient])
	a.h41.AddAgency(attacker2, cast[attacker2])
	a.cvn, a.c14, a.c41 = a.vn.Client(), a.h14.Client(), a.h41.Client()
	want := map[string]string{victimSender: linkNational, attacker: linkNational, victimRecipient: linkVictim, attacker2: linkHostile}
	for _, c := range []*broker.Client{a.cvn, a.c14, a.c41} {
		for code, bus := range want {
			eventually(t, "directory: "+code+" on bus "+bus, func() error {
				ag, err := c.LookupAgency(context.Background(), code)
				if err != nil {
					return err
				}
				if ag.Bus != bus {
					return fmt.Errorf("served by %q", ag.Bus)
				}
				return nil
			})
		}
	}
	return a
}

// linkOldCA is a CA valid since three months.
func linkOldCA(t testing.TB, name string) *signing.CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name, Organization: []string{"docaxis"}},
		NotBefore: time.Now().Add(-90 * 24 * time.Hour), NotAfter: time.Now().Add(2 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &signing.CA{Cert: cert, Key: key}
}

// leafsOf lists the leaf connections the national bus holds.
func (a *linkArena) leafsOf() []*server.LeafInfo {
	lz, err := a.vn.Server.NATS().Leafz(&server.LeafzOptions{})
	if err != nil {
		a.t.Fatal(err)
	}
	return lz.Leafs
}

// linkLog collects what an attacker's leaf server logs.
type linkLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *linkLog) add(format string, v ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
	l.mu.Unlock()
}
func (l *linkLog) Noticef(format string, v ...any) { l.add(format, v...) }
func (l *linkLog) Warnf(format string, v ...any)   { l.add(format, v...) }
func (l *linkLog) Fatalf(format string, v ...any)  { l.add(format, v...) }
func (l *linkLog) Errorf(format string, v ...any)  { l.add(format, v...) }
func (l *linkLog) Debugf(format string, v ...any)  { l.add(format, v...) }
func (l *linkLog) Tracef(format string, v ...any)  {}

func (l *linkLog) has(substr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			return true
		}
	}
	return false
}

// linkLeaf is a NATS server of the attacker's own that links to the
// national bus as a leaf node with creds, and a plain client on it.
type linkLeaf struct {
	name string
	srv  *server.Server
	log  *linkLog
	nc   *nats.Conn
}

func (a *linkArena) leaf(creds string) *linkLeaf {
	a.t.Helper()
	u, err := url.Parse(a.vn.LeafURL())
	if err != nil {
		a.t.Fatal(err)
	}
	l := &linkLeaf{name: "attacker-" + nuid.Next(), log: &linkLog{}}
	o := &server.Options{ServerName: l.name, Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true,
		LeafNode: server.LeafNodeOpts{ReconnectInterval: 100 * time.Millisecond,
			Remotes: []*server.RemoteLeafOpts{{URLs: []*url.URL{u}, Credentials: creds}}}}
	if l.srv, err = server.NewServer(o); err != nil {
		a.t.Fatal(err)
	}
	l.srv.SetLogger(l.log, true, false)
	go l.srv.Start()
	if !l.srv.ReadyForConnections(10 * time.Second) {
		a.t.Fatal("attacker's leaf server not ready")
	}
	if l.nc, err = nats.Connect(l.srv.ClientURL()); err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(l.close)
	return l
}

func (l *linkLeaf) close() {
	if l.nc != nil {
		l.nc.Close()
	}
	l.srv.Shutdown()
	l.srv.WaitForShutdown()
}

// connected reports whether the national holds the leaf's connection.
func (a *linkArena) connected(l *linkLeaf) bool {
	for _, li := range a.leafsOf() {
		if li.Name == l.name {
			return true
		}
	}
	return false
}

// marker sends, over nc, a request the national's link account answers,
// and waits for the answer: whatever nc published before has been handled
// by the national (a connection's messages keep their order).
func linkMarker(t testing.TB, nc *nats.Conn) {
	t.Helper()
	reply := "$JSC.R.marker" + nuid.Next()
	sub, err := nc.SubscribeSync(reply)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	eventually(t, "an answer through the link", func() error {
		if err := nc.PublishRequest("$JS."+linkNational+".API.CONSUMER.INFO.AXIS_FED_RELAY.fed_down_"+linkHostile, reply, nil); err != nil {
			return err
		}
		_, err := sub.NextMsg(time.Second)
		return err
	})
}

// hostileBusID is the key H41's operator signs trace entries with.
func (a *linkArena) hostileBusID() *federation.BusIdentity {
	id, err := federation.LoadBusIdentity(filepath.Join(a.h41.Dir, "home", "federation"), linkHostile, a.h41.CA)
	if err != nil {
		a.t.Fatal(err)
	}
	return id
}

// backdatedBusID is a bus certificate H41's operator issues itself from
// its CA, valid since long ago, to sign trace entries in the past.
func (a *linkArena) backdatedBusID() *federation.BusIdentity {
	a.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		a.t.Fatal(err)
	}
	u, _ := url.Parse(federation.BusURIPrefix + linkHostile)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "docaxis bus " + linkHostile},
		NotBefore: time.Now().Add(-60 * 24 * time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, URIs: []*url.URL{u}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.h41.CA.Cert, key.Public(), a.h41.CA.Key)
	if err != nil {
		a.t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		a.t.Fatal(err)
	}
	return &federation.BusIdentity{Bus: linkHostile, Key: key, Chain: []*x509.Certificate{cert, a.h41.CA.Cert}}
}

// linkForgeHop signs, as the hostile operator's own tool would, the first
// trace entry of a copy (the format doc.go and trace.go describe) at time
// at, and adds it to h.
func linkForgeHop(t testing.TB, h nats.Header, id *federation.BusIdentity, at time.Time, env, copyID string, raw []byte) {
	t.Helper()
	var x5c []string
	for _, c := range id.Chain {
		x5c = append(x5c, base64.StdEncoding.EncodeToString(c.Raw))
	}
	hj, _ := json.Marshal(map[string]any{"alg": "ES256", "typ": "JOSE", "cty": federation.TraceContentType, "x5c": x5c})
	pj, _ := json.Marshal(map[string]any{"bus": id.Bus, "at": at.UTC(), "envelope": env, "copy": copyID, "digest": envelope.Digest(raw)})
	input := base64.RawURLEncoding.EncodeToString(hj) + "." + base64.RawURLEncoding.EncodeToString(pj)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, id.Key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	h.Add(federation.HeaderTrace, input+"."+base64.RawURLEncoding.EncodeToString(sig))
}

// inject puts a copy of raw (envelope e, for recipient to on bus dest)
// straight into H41's outbound stream, with H41's trace entry at hopAt, as
// its operator can: the national takes it from there.
func (a *linkArena) inject(ctx context.Context, id *federation.BusIdentity, e *envelope.Envelope, raw []byte, dest, to string, hopAt time.Time) {
	a.t.Helper()
	copyID := e.ID + "." + envelope.Token(to)
	m := &nats.Msg{Subject: "axis.fedout." + dest + ".doc." + envelope.Token(to) + "." + envelope.Token(e.From), Data: raw, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, copyID)
	m.Header.Set(record.HeaderEnvelope, e.ID)
	linkForgeHop(a.t, m.Header, id, hopAt, e.ID, copyID, raw)
	if _, err := a.c41.JetStream().PublishMsg(ctx, m); err != nil {
		a.t.Fatal(err)
	}
}

// linkQuarantined counts what a bus's federation service quarantined.
func linkQuarantined(t testing.TB, c *broker.Client) uint64 {
	t.Helper()
	ctx := linkCtx(t)
	str, err := c.JetStream().Stream(ctx, record.QuarantineStream)
	if err != nil {
		t.Fatal(err)
	}
	subject := record.QuarantineSubject("federation")
	info, err := str.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

func randomHex(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func TestFederationLinkAttacks(t *testing.T) {
	a := newLinkArena(t)

	// The hostile member cannot acknowledge (+TERM) an envelope in flight
	// in the national's mailbox of G22, neither through its own bus nor
	// with its leaf credentials on a leaf server of its own; an agency's
	// credentials are refused as a leaf, and so is a second connection
	// with the member's credentials.
	t.Run("AcksOverTheLink", func(t *testing.T) {
		ctx := linkCtx(t)
		res, err := a.c14.Send(ctx, envelope.New(victimRecipient, []string{victimSender}, "Báo cáo gửi Văn phòng Chính phủ"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.cvn.WaitState(ctx, res.ID, victimSender, envelope.StateSent); err != nil {
			t.Fatal(err)
		}
		// G22's own program takes it and is still working on it.
		g22 := a.vn.Client(victimSender)
		mbox, err := g22.JetStream().Consumer(ctx, record.Stream, record.MailboxDurable(victimSender))
		if err != nil {
			t.Fatal(err)
		}
		batch, err := mbox.Fetch(1, jetstream.FetchMaxWait(30*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var held jetstream.Msg
		for m := range batch.Messages() {
			held = m
		}
		if held == nil || held.Headers().Get(record.HeaderEnvelope) != res.ID {
			t.Fatalf("G22's mailbox handed out %v", held)
		}
		ackSubject := held.Reply()
		pending := func() int {
			info, err := mbox.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return info.NumAckPending
		}
		if n := pending(); n != 1 {
			t.Fatalf("%d in flight before the attack", n)
		}

		// 1. Through H41's own bus, with its bus credentials.
		own, err := nats.Connect(a.h41.URL(), a.h41.AdminOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		defer own.Close()
		for _, body := range []string{"+TERM", "+ACK", "-NAK"} {
			if err := own.Publish(ackSubject, []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
		linkMarker(t, own)
		if n := pending(); n != 1 {
			t.Fatalf("after +TERM through H41's bus: %d in flight, want the victim's 1", n)
		}

		t.Log("refused through H41's own bus")
		// 2. An ordinary agency's credentials (H99, an agency of the
		// national) as a leaf: refused.
		agencyLeaf := a.leaf(a.vn.AgencyCreds(attacker))
		eventually(t, "the national refuses an agency's credentials as a leaf", func() error {
			if !agencyLeaf.log.has("Authorization Violation") {
				return fmt.Errorf("leaf server log: %v", agencyLeaf.log.lines)
			}
			return nil
		})
		if a.connected(agencyLeaf) {
			t.Fatal("the national holds a leaf connection with an agency's credentials")
		}
		agencyLeaf.close()
		t.Log("agency credentials refused as a leaf")

		// 3. A second connection with H41's leaf credentials while H41 is
		// linked: refused, and H41's link stays.
		second := a.leaf(a.h41.UplinkCreds())
		eventually(t, "the national refuses a second connection with the same leaf credentials", func() error {
			if !second.log.has("maximum account active connections exceeded") && !second.log.has("Authorization Violation") {
				return fmt.Errorf("leaf server log: %v", second.log.lines)
			}
			return nil
		})
		if a.connected(second) {
			t.Fatal("the national holds two connections with H41's leaf credentials")
		}
		second.close()
		t.Log("second connection refused:", second.log.lines)
		eventually(t, "H41's own link still up", func() error {
			for _, li := range a.leafsOf() {
				if li.Name == federation.ServerName(linkHostile) {
					return nil
				}
			}
			return fmt.Errorf("leafs %v", a.leafsOf())
		})

		// 4. H41's operator stops its bus and links with its leaf
		// credentials from a server of its own, a plain client on it.
		a.h41.StopBus()
		raw := a.leaf(a.h41.UplinkCreds())
		eventually(t, "the attacker's leaf linked", func() error {
			if !a.connected(raw) {
				return fmt.Errorf("not linked: %v", raw.log.lines)
			}
			return nil
		})
		for _, body := range []string{"+TERM", "+ACK", "-NAK"} {
			if err := raw.nc.Publish(ackSubject, []byte(body)); err != nil {
				t.Fatal(err)
			}
		}
		// And the national's own subjects, which a leaf in AXIS reached.
		for _, subj := range []string{record.DocSubject(victimSender, attacker2), "$JS.API.STREAM.PURGE.AXIS", "$KV.AXIS_DIRECTORY.agency." + envelope.Token(victimSender)} {
			if err := raw.nc.Publish(subj, []byte("{}")); err != nil {
				t.Fatal(err)
			}
		}
		linkMarker(t, raw.nc)
		if n := pending(); n != 1 {
			t.Fatalf("after +TERM with H41's leaf credentials: %d in flight, want the victim's 1", n)
		}
		raw.close()
		t.Log("refused from the attacker's own leaf")
		a.h41.RestartBus()
		a.c41 = a.h41.Client()

		// The victim's program gives it back: it is handed out again and
		// delivered, and H14 gets its receipt.
		if err := held.Nak(); err != nil {
			t.Fatal(err)
		}
		var got atomic.Int32
		mb, err := g22.Mailbox(ctx, victimSender, broker.OnOutcome(func(o broker.Outcome) {
			if o.ID == res.ID && o.Verified {
				got.Add(1)
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the victim's envelope delivered", func() error {
			if _, err := mb.Fetch(ctx, 1, time.Second, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
				return err
			}
			if got.Load() == 0 {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		if _, err := a.c14.WaitState(ctx, res.ID, victimSender, envelope.StateDelivered); err != nil {
			t.Fatal(err)
		}
		if info, err := a.cvn.JetStream().Stream(ctx, record.Stream); err == nil {
			if n := info.CachedInfo().State.Msgs; n == 0 {
				t.Fatal("the national's record was purged")
			}
		}
	})

	// 300 valid envelopes from an H41 agency, each listing an attachment
	// never sent, hold up neither the national nor H14's traffic from other
	// buses, and are quarantined with the reason once the bound is past.
	t.Run("MissingAttachments", func(t *testing.T) {
		ctx := linkCtx(t)
		id := a.hostileBusID()
		h41 := a.h41.Identity(attacker2)
		const n = 300
		before := linkQuarantined(t, a.c14)
		ids := map[string]bool{}
		for i := range n {
			sha := randomHex(t)
			e := envelope.New(attacker2, []string{victimRecipient}, fmt.Sprintf("Tệp không bao giờ tới %d", i))
			e.Attachments = []envelope.Attachment{{Name: "khong-co.pdf", MediaType: "application/pdf", Size: 1000, SHA256: sha, Key: "sha256/" + sha}}
			raw, err := h41.Seal(e)
			if err != nil {
				t.Fatal(err)
			}
			a.inject(ctx, id, e, raw, linkVictim, victimRecipient, time.Now())
			ids[e.ID] = true
		}
		// All of them reached H14 ahead of what follows.
		in, err := a.c14.JetStream().Stream(ctx, federation.InStream)
		if err != nil {
			t.Fatal(err)
		}
		filter := "axis.fedrelay." + linkVictim + "." + linkHostile + ".doc.>"
		eventually(t, "H41's envelopes on H14's inbound stream", func() error {
			info, err := in.Info(ctx, jetstream.WithSubjectFilter(filter))
			if err != nil {
				return err
			}
			if got := info.State.Subjects[strings.TrimSuffix(filter, ".>")+"."+envelope.Token(victimRecipient)+"."+envelope.Token(attacker2)]; got != n {
				return fmt.Errorf("%d of %d", got, n)
			}
			return nil
		})
		// G22's letter behind them is taken in while they still wait.
		res, err := a.cvn.Send(ctx, envelope.New(victimSender, []string{victimRecipient}, "Công văn khẩn"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.c14.WaitState(ctx, res.ID, victimRecipient, envelope.StateSent); err != nil {
			t.Fatal(err)
		}
		if got := linkQuarantined(t, a.c14) - before; got >= n {
			t.Fatalf("G22's letter was taken in only after all %d of H41's were given up", n)
		}
		receive := a.h14.Client(victimRecipient)
		var delivered atomic.Bool
		mb, err := receive.Mailbox(ctx, victimRecipient, broker.OnOutcome(func(o broker.Outcome) {
			if o.ID == res.ID && o.Verified {
				delivered.Store(true)
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "G22's letter delivered to H14", func() error {
			if _, err := mb.Fetch(ctx, 10, time.Second, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
				return err
			}
			if !delivered.Load() {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		// Then each of H41's is quarantined, with the reason, not before
		// the bound.
		eventually(t, "H41's envelopes quarantined on H14", func() error {
			if got := linkQuarantined(t, a.c14) - before; got < n {
				c, err := a.c14.JetStream().Consumer(ctx, federation.InStream, "fed_ingest_"+linkHostile)
				if err != nil {
					return err
				}
				info := c.CachedInfo()
				return fmt.Errorf("%d of %d (ingest consumer: %d pending, %d in flight, %d redelivered)", got, n, info.NumPending, info.NumAckPending, info.NumRedelivered)
			}
			return nil
		})
		list, err := a.c14.QuarantineList(ctx, "federation")
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, q := range list {
			if !ids[q.Envelope] {
				continue
			}
			found++
			if !strings.Contains(q.Reason, "did not arrive within "+linkWait.String()) {
				t.Fatalf("quarantined for %q", q.Reason)
			}
		}
		if found != n {
			t.Fatalf("%d of H41's %d envelopes in H14's quarantine", found, n)
		}
	})

	// File parts no relayed envelope lists, and parts larger than the
	// attachment their envelope signed, are not relayed nor stored by the
	// national, and do not grow its memory: H41's flood stays on H41. G22's
	// letter with an attachment meanwhile reaches H14. The flood is stored
	// on H41 while the national has revoked its link (which also closes
	// the connected link), so that what the test process's heap holds of
	// it on H41's side is written out before the national takes any; H41
	// is admitted again with new credentials.
	t.Run("ChunkFlood", func(t *testing.T) {
		ctx := linkCtx(t)
		const parts = 512
		const partSize = 512 << 10
		junk := make([]byte, partSize)
		if _, err := rand.Read(junk); err != nil {
			t.Fatal(err)
		}
		links, err := auth.LinksOf(a.vn.Server.NATS())
		if err != nil {
			t.Fatal(err)
		}
		hostileLinked := func() bool {
			for _, li := range a.leafsOf() {
				if li.Name == federation.ServerName(linkHostile) {
					return true
				}
			}
			return false
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc

		if err := a.vn.Auth.RevokeLeaf(linkHostile); err != nil {
			t.Fatal(err)
		}
		if err := links.Sync(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "H41's link closed by the revocation", func() error {
			if hostileLinked() {
				return fmt.Errorf("still linked")
			}
			return nil
		})

		// A real envelope of H41's with a 1000-byte attachment, and a part
		// for it of 512 KiB; then parts no envelope lists.
		id := a.hostileBusID()
		h41 := a.h41.Identity(attacker2)
		sha := randomHex(t)
		e := envelope.New(attacker2, []string{victimRecipient}, "Tệp phình to")
		e.Attachments = []envelope.Attachment{{Name: "to.bin", MediaType: "application/octet-stream", Size: 1000, SHA256: sha, Key: "sha256/" + sha}}
		raw, err := h41.Seal(e)
		if err != nil {
			t.Fatal(err)
		}
		a.inject(ctx, id, e, raw, linkVictim, victimRecipient, time.Now())
		publish := func(subject, chunk string, size int64) {
			m := &nats.Msg{Subject: subject, Data: junk, Header: nats.Header{}}
			m.Header.Set(jetstream.MsgIDHeader, nuid.Next())
			m.Header.Set(federation.HeaderChunk, chunk)
			m.Header.Set(federation.HeaderFileSize, fmt.Sprint(size))
			if _, err := a.c41.JetStream().PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		publish("axis.fedout."+linkVictim+".file."+e.ID+"."+sha, "1/1", 1000)
		for i := range parts - 1 {
			dest := linkVictim
			if i%2 == 1 {
				dest = linkNational
			}
			publish("axis.fedout."+dest+".file."+envelope.NewID()+"."+randomHex(t), "1/1", partSize)
		}
		eventually(t, "H41's bus has written its flood out", func() error {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base+32<<20 {
				return fmt.Errorf("heap %d MiB above the start", (ms.HeapAlloc-base)>>20)
			}
			return nil
		})

		var peak atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				// What the process holds live, not garbage not yet collected.
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > peak.Load() {
					peak.Store(ms.HeapAlloc)
				}
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		// Admitted again: new credentials where H41's server reads them.
		if err := a.vn.Auth.LeafCreds(linkNational, linkHostile, a.h41.UplinkCreds()); err != nil {
			t.Fatal(err)
		}
		if err := links.Sync(); err != nil {
			t.Fatal(err)
		}
		// Meanwhile G22 sends H14 a letter with an attachment.
		content := strings.Repeat("Phụ lục công văn. ", 50000)
		res, err := a.cvn.Send(ctx, envelope.New(victimSender, []string{victimRecipient}, "Công văn có phụ lục"),
			broker.File{Name: "phu-luc.txt", Reader: strings.NewReader(content), Size: int64(len(content))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.c14.WaitState(ctx, res.ID, victimRecipient, envelope.StateSent); err != nil {
			t.Fatal(err)
		}
		// Every part of the flood is dropped by the national.
		dropped := func() uint64 {
			st, err := a.vn.Fed.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var n uint64
			for k, v := range st.Moved {
				if strings.HasPrefix(k, "dropped:"+linkHostile+":") {
					n += v
				}
			}
			return n
		}
		eventually(t, "the flood dropped by the national", func() error {
			if got := dropped(); got < parts {
				return fmt.Errorf("%d of %d parts dropped", got, parts)
			}
			return nil
		})
		close(stop)
		wg.Wait()
		relay, err := a.cvn.JetStream().Stream(ctx, federation.RelayStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := relay.Info(ctx, jetstream.WithSubjectFilter("axis.fedrelay.*."+linkHostile+".file.>"))
		if err != nil {
			t.Fatal(err)
		}
		if len(info.State.Subjects) != 0 {
			t.Fatalf("the national relayed H41's file parts: %v", info.State.Subjects)
		}
		if info.State.Bytes > 64<<20 {
			t.Fatalf("the national's relay holds %d bytes", info.State.Bytes)
		}
		// The test process also runs H41, whose server caches what it reads
		// out for the national (for ten seconds); the national holds at most
		// one bounded pull per link. A national that kept the flood would
		// grow by more than the flood itself.
		flood := uint64(parts * partSize)
		grew := peak.Load() - min(base, peak.Load())
		t.Logf("heap grew by at most %d MiB while the national took a %d MiB flood", grew>>20, flood>>20)
		if grew > linkHeapBound {
			t.Fatalf("heap grew by %d MiB while the national took a %d MiB flood, bound %d MiB", grew>>20, flood>>20, linkHeapBound>>20)
		}
		// The letter and its attachment reached H14.
		dir := t.TempDir()
		var got atomic.Bool
		mb, err := a.h14.Client(victimRecipient).Mailbox(ctx, victimRecipient, broker.SaveAttachments(dir), broker.OnOutcome(func(o broker.Outcome) {
			if o.ID == res.ID && o.Verified {
				got.Store(true)
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "G22's letter delivered to H14", func() error {
			if _, err := mb.Fetch(ctx, 10, time.Second, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
				return err
			}
			if !got.Load() {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		if b, err := os.ReadFile(filepath.Join(dir, res.ID, "phu-luc.txt")); err != nil || string(b) != content {
			t.Fatalf("attachment on H14: %d bytes, %v", len(b), err)
		}
	})

	// While H14 is down, H41's agency sends it more than H14's queue and
	// H41's share of the relay hold: the national takes no more from H41
	// beyond its share, the rest waits on H41's own bus, and all of it
	// arrives once H14 is back.
	t.Run("RelayQuota", func(t *testing.T) {
		ctx := linkCtx(t)
		a.h14.StopBus()
		const n, size = 16, 2 << 20
		blob := make([]byte, size)
		var ids, shas []string
		for i := range n {
			if _, err := rand.Read(blob); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(blob)
			shas = append(shas, hex.EncodeToString(sum[:]))
			res, err := a.c41.Send(ctx, envelope.New(attacker2, []string{victimRecipient}, fmt.Sprintf("Hồ sơ lớn %d", i)),
				broker.File{Name: "ho-so.bin", Reader: strings.NewReader(string(blob)), Size: size})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, res.ID)
		}
		held := func() uint64 {
			st, err := a.vn.Fed.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return st.Moved["held:"+linkHostile]
		}
		eventually(t, "the national holds back H41's traffic", func() error {
			if held() == 0 {
				return fmt.Errorf("not held back")
			}
			return nil
		})
		relay, err := a.cvn.JetStream().Stream(ctx, federation.RelayStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := relay.Info(ctx, jetstream.WithSubjectFilter("axis.fedrelay."+linkVictim+"."+linkHostile+".>"))
		if err != nil {
			t.Fatal(err)
		}
		// What reached H14's queue, and H41's share waiting behind it (and
		// the attachment of the envelope that filled it).
		if limit := uint64(linkQuota + linkRelayQuota + size + 1<<20); info.State.Bytes > limit {
			t.Fatalf("the national's relay holds %d MiB of H41's traffic, at most %d MiB expected", info.State.Bytes>>20, limit>>20)
		}
		up, err := a.c41.JetStream().Consumer(ctx, federation.OutStream, "fed_up")
		if err != nil {
			t.Fatal(err)
		}
		if p := up.CachedInfo().NumPending + uint64(up.CachedInfo().NumAckPending); p == 0 {
			t.Fatal("nothing of H41's waits on H41")
		}
		a.h14.RestartBus()
		a.c14 = a.h14.Client()
		// H14's tracker records who may read an attachment as it follows
		// the record; the mailbox reads them once it has (broker's own
		// ordering, not the federation's).
		refs, err := a.c14.JetStream().KeyValue(ctx, record.FileRefsBucket)
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "H41's letters on H14's record", func() error {
			for i, sha := range shas {
				if _, err := refs.Get(ctx, record.FileRefKey(sha, victimRecipient)); err != nil {
					return fmt.Errorf("letter %d: %w", i, err)
				}
			}
			return nil
		})
		var mu sync.Mutex
		got := map[string]bool{}
		mb, err := a.h14.Client(victimRecipient).Mailbox(ctx, victimRecipient, broker.OnOutcome(func(o broker.Outcome) {
			if o.Verified {
				mu.Lock()
				got[o.ID] = true
				mu.Unlock()
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "H41's letters delivered to H14", func() error {
			if _, err := mb.Fetch(ctx, 10, time.Second, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if !got[id] {
					return fmt.Errorf("%d of %d", len(got), n)
				}
			}
			return nil
		})
	})

	// H41's operator dates a copy back, before its agency's certificate
	// expired: the national judges the signature no earlier than
	// MaxLinkOutage before it took the copy, and refuses it; a copy dated
	// back within the bound (a link down two hours) passes.
	t.Run("BackdatedTrace", func(t *testing.T) {
		ctx := linkCtx(t)
		id := a.backdatedBusID()
		before := linkQuarantined(t, a.cvn)
		now := time.Now()
		good, err := a.h41.CA.Issue(attacker2, cast[attacker2], signing.IssueOptions{NotBefore: now.Add(-30 * 24 * time.Hour), Validity: 60 * 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		back, rawBack := a.backdatedEnvelope(t, now, "Ký lùi ngày")
		a.inject(ctx, id, back, rawBack, linkVictim, victimRecipient, now.Add(-10*24*time.Hour-30*time.Minute))
		late := envelope.New(attacker2, []string{victimRecipient}, "Gửi sau khi mất kết nối hai giờ")
		late.Created = now.Add(-2*time.Hour - time.Minute)
		rawLate, err := good.Seal(late)
		if err != nil {
			t.Fatal(err)
		}
		a.inject(ctx, id, late, rawLate, linkVictim, victimRecipient, now.Add(-2*time.Hour))

		if _, err := a.c14.WaitState(ctx, late.ID, victimRecipient, envelope.StateSent); err != nil {
			t.Fatal(err)
		}
		a.refusedAsBackdated(t, ctx, before, back.ID)
		// The copy within the bound verifies on H14, judged two hours back.
		var ok atomic.Bool
		mb, err := a.h14.Client(victimRecipient).Mailbox(ctx, victimRecipient, broker.OnOutcome(func(o broker.Outcome) {
			if o.ID == late.ID && o.Verified {
				ok.Store(true)
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the late copy delivered", func() error {
			if _, err := mb.Fetch(ctx, 10, time.Second, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
				return err
			}
			if !ok.Load() {
				return fmt.Errorf("not yet")
			}
			return nil
		})
	})

	// The same backdating with a second entry of H41's own, dated back a
	// minute after the first: it is no witness, the national's clock is.
	t.Run("BackdatedTraceTwoEntriesOfItsOwn", func(t *testing.T) {
		ctx := linkCtx(t)
		id := a.backdatedBusID()
		before := linkQuarantined(t, a.cvn)
		now := time.Now()
		back, raw := a.backdatedEnvelope(t, now, "Ký lùi ngày, hai dấu vết")
		copyID := back.ID + "." + envelope.Token(victimRecipient)
		m := &nats.Msg{Subject: "axis.fedout." + linkVictim + ".doc." + envelope.Token(victimRecipient) + "." + envelope.Token(attacker2), Data: raw, Header: nats.Header{}}
		m.Header.Set(jetstream.MsgIDHeader, copyID)
		m.Header.Set(record.HeaderEnvelope, back.ID)
		at := now.Add(-10*24*time.Hour - 30*time.Minute)
		first, err := id.AppendHop(m.Header, nil, at, back.ID, copyID, raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := id.AppendHop(m.Header, []federation.Hop{first}, at.Add(time.Minute), back.ID, copyID, raw); err != nil {
			t.Fatal(err)
		}
		if _, err := a.c41.JetStream().PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
		a.refusedAsBackdated(t, ctx, before, back.ID)
	})
}

// backdatedEnvelope is an envelope of H41's agency created ten days
// before now and signed with a certificate that expired then.
func (a *linkArena) backdatedEnvelope(t *testing.T, now time.Time, subject string) (*envelope.Envelope, []byte) {
	t.Helper()
	expired, err := a.h41.CA.Issue(attacker2, cast[attacker2], signing.IssueOptions{NotBefore: now.Add(-30 * 24 * time.Hour), Validity: 20 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	back := envelope.New(attacker2, []string{victimRecipient}, subject)
	back.Created = now.Add(-10*24*time.Hour - time.Hour)
	raw, err := expired.Seal(back)
	if err != nil {
		t.Fatal(err)
	}
	return back, raw
}

// refusedAsBackdated waits until the national has quarantined more than
// before, and checks that envelope id is among it, refused as dated back
// past the bound, and not on H14's record.
func (a *linkArena) refusedAsBackdated(t *testing.T, ctx context.Context, before uint64, id string) {
	t.Helper()
	eventually(t, "the backdated copy refused by the national", func() error {
		if linkQuarantined(t, a.cvn) == before {
			return fmt.Errorf("nothing quarantined")
		}
		return nil
	})
	list, err := a.cvn.QuarantineList(ctx, "federation")
	if err != nil {
		t.Fatal(err)
	}
	refused := false
	for _, q := range list {
		if q.Envelope == id {
			refused = true
			if !strings.Contains(q.Reason, "before it was recorded") {
				t.Fatalf("quarantined for %q", q.Reason)
			}
		}
	}
	if !refused {
		t.Fatalf("the backdated copy is not in the national's quarantine: %+v", list)
	}
	if _, err := a.c14.Status(ctx, id); err == nil {
		t.Fatalf("the backdated envelope is on H14's record")
	}
}
