package attacks_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A federation where one member bus (H41) is hostile: three real buses on
// loopback, the national VN serving G22, bus H14 serving the province's
// agencies H14 and H14B, bus H41 serving H41 and H41B. H41's operator
// attacks with its own bus: the functions behind its CLI (`agency revoke`
// is Client.RevokeAgency, `agency add` is Client.RegisterAgency, which
// checks the code bindings itself), and its own directory and outbound stream written
// with its bus's credentials, past its CLI.
const (
	fedCAVictimB   = "000.01.00.H14" // H14B
	fedCAAttackerB = "000.01.00.H41" // H41B
)

type fedCAArena struct {
	t             *testing.T
	vn, h14, h41  *bustest.FedBus
	cvn, c14, c41 *broker.Client // each bus's own client
}

func newFedCAArena(t *testing.T) *fedCAArena {
	t.Helper()
	a := &fedCAArena{t: t}
	a.vn = bustest.StartNational(t, "VN")
	a.h14 = bustest.StartMember(t, "H14", a.vn)
	a.h41 = bustest.StartMember(t, "H41", a.vn)
	// Codes belong to buses: each province's codes to its bus, the
	// ministries' (G) to the national.
	a.vn.Bind("VN", "*.*.*.G*")
	a.vn.Bind("H14", "*.*.*.H14")
	a.vn.Bind("H41", "*.*.*.H41")
	a.fedCAWaitBinding(a.h14, "H41", "*.*.*.H41")
	a.fedCAWaitBinding(a.h41, "H41", "*.*.*.H41")
	a.vn.AddAgency(victimSender, cast[victimSender])
	a.h14.AddAgency(victimRecipient, cast[victimRecipient])
	a.h14.AddAgency(fedCAVictimB, "Sở Tư pháp Sơn La")
	a.h41.AddAgency(attacker2, cast[attacker2])
	a.h41.AddAgency(fedCAAttackerB, "Sở Tư pháp Nghệ An")
	a.cvn, a.c14, a.c41 = a.vn.Client(), a.h14.Client(), a.h41.Client()
	want := map[string]string{victimSender: "VN", victimRecipient: "H14", fedCAVictimB: "H14", attacker2: "H41", fedCAAttackerB: "H41"}
	for _, c := range []*broker.Client{a.cvn, a.c14, a.c41} {
		for code, bus := range want {
			a.servedBy(c, code, bus)
		}
	}
	return a
}

// fedCAWaitBinding waits until bus's directory shows the binding of id.
func (a *fedCAArena) fedCAWaitBinding(b *bustest.FedBus, id, codes string) {
	a.t.Helper()
	eventually(a.t, "binding of "+id+" on bus "+b.ID, func() error {
		list, err := federation.Buses(context.Background(), b.Service.Client)
		if err != nil {
			return err
		}
		for _, e := range list {
			if e.ID == id && strings.Join(e.Codes, ",") == codes {
				return nil
			}
		}
		return errors.New("not yet")
	})
}

func (a *fedCAArena) servedBy(c *broker.Client, code, bus string) {
	a.t.Helper()
	eventually(a.t, fmt.Sprintf("%s served by %s", code, bus), func() error {
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

// send sends from -> to with from's own credentials on bus b.
func (a *fedCAArena) send(b *bustest.FedBus, from, to, subject string) (*broker.SendResult, error) {
	return b.Client(from).Send(ctxT(a.t), envelope.New(from, []string{to}, subject))
}

// receive reads agency's mailbox on bus b until the envelope id was handed
// over verified.
func (a *fedCAArena) receive(b *bustest.FedBus, agency, id string) {
	a.t.Helper()
	ctx := ctxT(a.t)
	var mu sync.Mutex
	outs := map[string]broker.Outcome{}
	mb, err := b.Client(agency).Mailbox(ctx, agency, broker.OnOutcome(func(o broker.Outcome) {
		mu.Lock()
		outs[o.ID] = o
		mu.Unlock()
	}))
	if err != nil {
		a.t.Fatal(err)
	}
	eventually(a.t, fmt.Sprintf("%s receives %s", agency, id), func() error {
		if _, err := mb.Fetch(ctx, 16, time.Second, func(context.Context, *broker.Delivery) error { return nil }); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		o, ok := outs[id]
		switch {
		case !ok:
			return errors.New("not yet")
		case !o.Verified:
			return fmt.Errorf("handed over unverified: %+v", o)
		}
		return nil
	})
}

// dirValue returns the value under key in bus b's directory (nil: none).
func (a *fedCAArena) dirValue(b *bustest.FedBus, key string) []byte {
	a.t.Helper()
	kv, err := b.Service.Client.JetStream().KeyValue(ctxT(a.t), record.DirectoryBucket)
	if err != nil {
		a.t.Fatal(err)
	}
	e, err := kv.Get(ctxT(a.t), key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		a.t.Fatal(err)
	}
	return e.Value()
}

// quarantined waits until bus b's federation quarantine holds a message
// from subject whose reason says want.
func (a *fedCAArena) quarantined(b *bustest.FedBus, subject, want string) {
	a.t.Helper()
	eventually(a.t, fmt.Sprintf("bus %s quarantines %s", b.ID, subject), func() error {
		// Each listing opens a consumer: look less often than the rest.
		time.Sleep(200 * time.Millisecond)
		list, err := b.Service.Client.QuarantineList(context.Background(), "federation")
		if err != nil {
			return err
		}
		for _, q := range list {
			if q.Subject == subject {
				if !strings.Contains(q.Reason, want) {
					return fmt.Errorf("quarantined for %q, want %q", q.Reason, want)
				}
				return nil
			}
		}
		return errors.New("not yet")
	})
}

// announce publishes a directory announcement into bus b's outbound stream
// with the bus's own credentials, as a hostile operator would past its
// federation service.
func (a *fedCAArena) announce(b *bustest.FedBus, kind, key string, value []byte) string {
	a.t.Helper()
	subject := "axis.fedout." + a.vn.ID + ".dir." + kind + "." + key
	m := &nats.Msg{Subject: subject, Data: value, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, "forged."+envelope.NewID())
	if _, err := b.Service.Client.JetStream().PublishMsg(ctxT(a.t), m); err != nil {
		a.t.Fatal(err)
	}
	return subject
}

func TestFederationEachBusSpeaksForItself(t *testing.T) {
	a := newFedCAArena(t)
	ctx := ctxT(t)
	kid14, kid41, kidVN := signing.KeyID(a.h14.CA.Cert), signing.KeyID(a.h41.CA.Cert), signing.KeyID(a.vn.CA.Cert)

	t.Run("EachBusCRLUnderItsOwnKey", func(t *testing.T) {
		// H14 revokes H14B; then H41 revokes its own H41B. H41's list must
		// not replace H14's anywhere.
		if _, err := a.c14.RevokeAgency(ctx, a.h14.Keystore, fedCAVictimB, time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		crl14 := a.dirValue(a.h14, broker.CRLPrefix+kid14)
		if crl14 == nil {
			t.Fatal("H14's CRL is not under its CA's key")
		}
		if _, err := a.c41.RevokeAgency(ctx, a.h41.Keystore, fedCAAttackerB, time.Now().Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		crl41 := a.dirValue(a.h41, broker.CRLPrefix+kid41)
		for _, b := range []*bustest.FedBus{a.vn, a.h14, a.h41} {
			eventually(t, "both CRLs on bus "+b.ID, func() error {
				if got := a.dirValue(b, broker.CRLPrefix+kid14); string(got) != string(crl14) {
					return fmt.Errorf("H14's CRL: %d bytes", len(got))
				}
				if got := a.dirValue(b, broker.CRLPrefix+kid41); string(got) != string(crl41) {
					return fmt.Errorf("H41's CRL: %d bytes", len(got))
				}
				return nil
			})
		}
		// H14B's revocation survived H41's list, on its own bus and on the
		// national; each list revoked only its own agency.
		if _, err := a.send(a.h14, fedCAVictimB, victimSender, "Sau khi thu hồi"); !errors.Is(err, signing.ErrRevoked) {
			t.Fatalf("H14B sends after its revocation: %v", err)
		}
		late, err := a.h14.Identity(fedCAVictimB).Seal(envelope.New(fedCAVictimB, []string{victimSender}, "Ký sau khi thu hồi"))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the national refuses H14B", func() error {
			if _, err := a.vn.Client().Verifier().Verify(late); !errors.Is(err, signing.ErrRevoked) {
				return fmt.Errorf("H14B's envelope on the national: %v", err)
			}
			return nil
		})
		for _, code := range []string{victimRecipient, victimSender} {
			for _, c := range []*broker.Client{a.cvn, a.c14} {
				if at, ok := c.Trust().RevocationOf(fedCACert(a, code)); ok {
					t.Fatalf("%s revoked since %s", code, at)
				}
			}
		}
	})

	t.Run("RevokeForeignAgencyRefused", func(t *testing.T) {
		// `docaxis agency revoke 000.00.00.H14` and `... G22 --at 2026-01-01`
		// on bus H41: refused, naming the bus that serves the agency.
		for _, tt := range []struct {
			code string
			at   time.Time
		}{{victimRecipient, time.Now()}, {victimSender, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}} {
			_, err := a.c41.RevokeAgency(ctx, a.h41.Keystore, tt.code, tt.at)
			if !errors.Is(err, broker.ErrServedElsewhere) || !strings.Contains(err.Error(), "only bus") {
				t.Fatalf("H41 revokes %s: %v", tt.code, err)
			}
		}
		// Past its CLI: H41's CA signs a CRL listing H14's and G22's serials
		// and publishes it on its own bus (under its own key, the only one
		// its CA can fill)...
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		forged, err := a.h41.CA.NewCRL([]signing.Revocation{
			{Serial: fedCACert(a, victimRecipient).SerialNumber, At: at},
			{Serial: fedCACert(a, victimSender).SerialNumber, At: at},
			{Serial: fedCACert(a, fedCAAttackerB).SerialNumber, At: at},
		}, 100, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.c41.PublishCRL(ctx, forged); err != nil {
			t.Fatal(err)
		}
		// ...and announces it to the national under H14's and VN's keys,
		// and writes it there in its own directory too.
		kv41, err := a.c41.JetStream().KeyValue(ctx, record.DirectoryBucket)
		if err != nil {
			t.Fatal(err)
		}
		var subjects []string
		for _, kid := range []string{kid14, kidVN} {
			if _, err := kv41.Put(ctx, broker.CRLPrefix+kid, forged); err != nil {
				t.Fatal(err)
			}
			subjects = append(subjects, a.announce(a.h41, "crl", kid, forged))
		}
		for _, s := range subjects {
			a.quarantined(a.vn, s, "under the key")
		}
		eventually(t, "H41's list reaches H14", func() error {
			if got := a.dirValue(a.h14, broker.CRLPrefix+kid41); string(got) != string(forged) {
				return errors.New("not yet")
			}
			return nil
		})
		for _, b := range []*bustest.FedBus{a.vn, a.h14} {
			if got := a.dirValue(b, broker.CRLPrefix+kid14); string(got) == string(forged) {
				t.Fatalf("bus %s keeps H41's list under H14's key", b.ID)
			}
			if got := a.dirValue(b, broker.CRLPrefix+kidVN); string(got) == string(forged) {
				t.Fatalf("bus %s keeps H41's list under VN's key", b.ID)
			}
		}
		// The victims still send, and their letters verify on arrival.
		res, err := a.send(a.h14, victimRecipient, victimSender, "Sơn La vẫn gửi được")
		if err != nil {
			t.Fatalf("H14 sends: %v", err)
		}
		a.receive(a.vn, victimSender, res.ID)
		res, err = a.send(a.vn, victimSender, victimRecipient, "Văn phòng Chính phủ vẫn gửi được")
		if err != nil {
			t.Fatalf("G22 sends: %v", err)
		}
		a.receive(a.h14, victimRecipient, res.ID)
		// Its own agency is what H41's list revokes.
		if _, err := a.send(a.h41, fedCAAttackerB, victimSender, "x"); !errors.Is(err, signing.ErrRevoked) {
			t.Fatalf("H41B after H41's list: %v", err)
		}
	})

	t.Run("CodeSquattingRefused", func(t *testing.T) {
		squat := "000.05.00.H14"
		// `docaxis agency add 000.05.00.H14` on H41: refused before a key
		// is issued.
		if err := a.c41.CheckClaim(ctx, squat); !errors.Is(err, federation.ErrNotBound) || !strings.Contains(err.Error(), "bound to bus H14") {
			t.Fatalf("H41 claims %s: %v", squat, err)
		}
		// Past its CLI: registered on its own bus and announced by hand.
		value := fedCASquat(t, a.h41, squat)
		subject := a.announce(a.h41, "agency", envelope.Token(squat), value)
		a.quarantined(a.vn, subject, "bound to bus H14")
		// H14 takes its own code; G22's letter goes to H14 and verifies.
		a.h14.AddAgency(squat, "Sở Kế hoạch Sơn La")
		for _, c := range []*broker.Client{a.cvn, a.c14, a.c41} {
			a.servedBy(c, squat, "H14") // H41's own entry gives way to the binding
		}
		res, err := a.send(a.vn, victimSender, squat, "Gửi Sở Kế hoạch Sơn La")
		if err != nil {
			t.Fatal(err)
		}
		a.receive(a.h14, squat, res.ID)
	})

	t.Run("ClaimWhileLinkDownReconciledByBinding", func(t *testing.T) {
		code := "000.06.00.H14"
		a.vn.StopBus()
		// While the national is away, H14 registers its code and H41 claims
		// it too (announced by hand): whichever arrives first, the binding
		// decides.
		value := fedCASquat(t, a.h41, code)
		subject := a.announce(a.h41, "agency", envelope.Token(code), value)
		a.h14.AddAgency(code, "Sở Y tế Sơn La")
		a.vn.RestartBus()
		a.cvn = a.vn.Client()
		a.quarantined(a.vn, subject, "bound to bus H14")
		for _, c := range []*broker.Client{a.cvn, a.c14, a.c41} {
			a.servedBy(c, code, "H14")
		}
		res, err := a.send(a.vn, victimSender, code, "Gửi Sở Y tế Sơn La")
		if err != nil {
			t.Fatal(err)
		}
		a.receive(a.h14, code, res.ID)
	})

	t.Run("MemberRemoval", func(t *testing.T) {
		// Before: H41 writes to G22, on record at the national.
		before, err := a.send(a.h41, attacker2, victimSender, "Trước khi rời liên thông")
		if err != nil {
			t.Fatal(err)
		}
		a.receive(a.vn, victimSender, before.ID)
		if _, err := a.c41.WaitState(ctx, before.ID, victimSender, envelope.StateDelivered); err != nil {
			t.Fatal(err)
		}
		r := a.vn.RemoveMember("H41")
		if !slices.Contains(r.Agencies, attacker2) || !slices.Contains(r.Withdrawn, kid41) {
			t.Fatalf("removal %+v", r)
		}
		// Its link is closed, and its credentials no longer get in.
		eventually(t, "H41's leaf closed", func() error {
			lz, err := a.vn.Server.NATS().Leafz(&server.LeafzOptions{})
			if err != nil {
				return err
			}
			for _, l := range lz.Leafs {
				if l.Name == federation.ServerName("H41") {
					return errors.New("still connected")
				}
			}
			return nil
		})
		fedCALeafRefused(t, a.vn.LeafURL(), filepath.Join(a.h41.Dir, "home", "federation", "uplink.creds"))
		// Senders on every other bus get a clear error.
		for _, s := range []struct {
			b    *bustest.FedBus
			from string
		}{{a.vn, victimSender}, {a.h14, victimRecipient}} {
			eventually(t, "sending from bus "+s.b.ID+" refused", func() error {
				_, err := a.send(s.b, s.from, attacker2, "Gửi bus đã rời")
				if !errors.Is(err, broker.ErrWithdrawn) || !strings.Contains(err.Error(), "bus H41 left the federation") {
					return fmt.Errorf("send: %v", err)
				}
				return nil
			})
		}
		// What H41's agencies sign from now on verifies nowhere: its CA is
		// withdrawn on every bus, and a copy that reached the national's
		// ingest anyway (H41's trace entry, relayed) is refused.
		e := envelope.New(attacker2, []string{victimSender}, "Sau khi rời liên thông")
		raw, err := a.h41.Identity(attacker2).Seal(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range []*bustest.FedBus{a.vn, a.h14} {
			eventually(t, "H41's CA withdrawn on bus "+b.ID, func() error {
				if _, err := b.Client().Verifier().Verify(raw); !errors.Is(err, signing.ErrRevoked) {
					return fmt.Errorf("verify: %v", err)
				}
				return nil
			})
		}
		subject := fedCARelayAfterRemoval(t, a, e, raw)
		a.quarantined(a.vn, subject, "withdrawn")
		// History stays on record: the entries, and the earlier envelope,
		// which still verifies.
		list, err := federation.Buses(ctx, a.cvn)
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.IndexFunc(list, func(b federation.BusEntry) bool { return b.ID == "H41" }); i < 0 || list[i].Removed.IsZero() {
			t.Fatalf("H41's entry after removal: %+v", list)
		}
		ag, err := a.cvn.LookupAgency(ctx, attacker2)
		if err != nil || ag.Withdrawn.IsZero() || ag.Bus != "H41" {
			t.Fatalf("H41's agency after removal: %+v, %v", ag, err)
		}
		s, err := a.cvn.JetStream().Stream(ctx, record.Stream)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetLastMsgForSubject(ctx, record.DocSubject(victimSender, attacker2))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := a.vn.Client().Verifier().Verify(m.Data, signing.At(m.Time)); err != nil || got.Envelope.ID != before.ID {
			t.Fatalf("the envelope H41 sent before leaving: %v", err)
		}
		if ds, err := a.cvn.Status(ctx, before.ID); err != nil || len(ds.Recipients) != 1 {
			t.Fatalf("status of the earlier envelope: %+v, %v", ds, err)
		}
	})
}

// fedCACert returns the certificate of code on its bus.
func fedCACert(a *fedCAArena, code string) *x509.Certificate {
	for _, b := range []*bustest.FedBus{a.vn, a.h14, a.h41} {
		if id := b.Identity(code); id != nil {
			return id.Certificate()
		}
	}
	a.t.Fatalf("no identity for %s", code)
	return nil
}

// fedCASquat registers code on bus b with a certificate from b's own CA,
// past every check of a client (as the bus's hostile operator can), and
// returns the directory entry.
func fedCASquat(t *testing.T, b *bustest.FedBus, code string) []byte {
	t.Helper()
	id, err := b.CA.Issue(code, "Giả danh", signing.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	ag := broker.Agency{Code: code, Name: "Giả danh", Certificate: string(signing.EncodeCerts(id.Chain...)), Bus: b.ID, Added: now, Updated: now, State: broker.StateActive}
	v, _ := json.Marshal(ag)
	// Written into its own directory with the bus's credentials: every
	// registration through a client checks the code bindings.
	ctx := ctxT(t)
	kv, err := b.Service.Client.JetStream().KeyValue(ctx, record.DirectoryBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, record.DirectoryKey(code), v); err != nil {
		t.Fatal(err)
	}
	return v
}

// fedCARelayAfterRemoval puts into the national's relay, for itself, a
// copy from H41's agency signed after the removal, with H41's and the
// national's trace entries (as if relayed in a race with the removal),
// and returns its subject.
func fedCARelayAfterRemoval(t *testing.T, a *fedCAArena, e *envelope.Envelope, raw []byte) string {
	t.Helper()
	h41, err := federation.LoadBusIdentity(filepath.Join(a.h41.Dir, "home", "federation"), "H41", a.h41.CA)
	if err != nil {
		t.Fatal(err)
	}
	vn, err := federation.LoadBusIdentity(filepath.Join(a.vn.Dir, "home", "federation"), "VN", a.vn.CA)
	if err != nil {
		t.Fatal(err)
	}
	subject := "axis.fedrelay.VN.doc." + envelope.Token(victimSender) + "." + envelope.Token(attacker2)
	m := &nats.Msg{Subject: subject, Data: raw, Header: nats.Header{}}
	id := e.ID + "." + envelope.Token(victimSender)
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Header.Set(record.HeaderEnvelope, e.ID)
	hop, err := h41.AppendHop(m.Header, nil, time.Now(), e.ID, id, raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vn.AppendHop(m.Header, []federation.Hop{hop}, time.Now(), e.ID, id, raw); err != nil {
		t.Fatal(err)
	}
	if _, err := a.cvn.JetStream().PublishMsg(ctxT(t), m); err != nil {
		t.Fatal(err)
	}
	return subject
}

// fedCALeafRefused links a plain NATS server to the national's leaf port
// with the removed member's own leaf credentials and waits until the
// national refuses them.
func fedCALeafRefused(t *testing.T, leafURL, creds string) {
	t.Helper()
	u, err := url.Parse(leafURL)
	if err != nil {
		t.Fatal(err)
	}
	log := &fedCALeafLog{}
	s, err := server.NewServer(&server.Options{
		ServerName: "fedca-removed-member", DontListen: true, NoSigs: true,
		LeafNode: server.LeafNodeOpts{ReconnectInterval: 100 * time.Millisecond, Remotes: []*server.RemoteLeafOpts{{URLs: []*url.URL{u}, Credentials: creds}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.SetLoggerV2(log, false, false, false)
	s.Start()
	t.Cleanup(s.Shutdown)
	eventually(t, "the national refuses the removed member's leaf credentials", func() error {
		if n := s.NumLeafNodes(); n != 0 {
			return fmt.Errorf("%d leaf connections with revoked credentials", n)
		}
		if !log.saw("Authorization Violation") {
			return errors.New("no refusal yet")
		}
		return nil
	})
	if n := s.NumLeafNodes(); n != 0 {
		t.Fatalf("%d leaf connections with revoked credentials", n)
	}
}

type fedCALeafLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *fedCALeafLog) add(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}

func (l *fedCALeafLog) saw(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.lines, func(line string) bool { return strings.Contains(line, s) })
}

func (l *fedCALeafLog) Noticef(format string, v ...any) {}
func (l *fedCALeafLog) Warnf(format string, v ...any)   { l.add(format, v...) }
func (l *fedCALeafLog) Fatalf(format string, v ...any)  { l.add(format, v...) }
func (l *fedCALeafLog) Errorf(format string, v ...any)  { l.add(format, v...) }
func (l *fedCALeafLog) Debugf(format string, v ...any)  {}
func (l *fedCALeafLog) Tracef(format string, v ...any)  {}
