package federation_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/federation"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Agencies of the three buses: the national bus (VN) serves the Government
// Office, the provincial buses serve their people's committees.
const (
	govOffice = "000.00.00.G22" // on VN
	hanoi     = "000.00.00.H26" // on HN
	hanoiDoJ  = "000.00.01.H26" // on HN
	danang    = "000.00.00.H17" // on DN
	danangDoJ = "000.00.01.H17" // on DN
)

// federationT is three buses on loopback, each with its own store
// directory, CA, NATS authority (operator mode) and agencies.
type federationT struct {
	vn, hn, dn *bustest.FedBus
	// admin clients (bus credentials, all the bus's identities)
	cvn, chn, cdn *broker.Client
}

func startFederation(t *testing.T) *federationT {
	t.Helper()
	f := &federationT{}
	f.vn = bustest.StartNational(t, "VN")
	f.hn = bustest.StartMember(t, "HN", f.vn)
	f.dn = bustest.StartMember(t, "DN", f.vn)
	f.vn.AddAgency(govOffice, "Văn phòng Chính phủ")
	f.hn.AddAgency(hanoi, "UBND thành phố Hà Nội")
	f.hn.AddAgency(hanoiDoJ, "Sở Tư pháp Hà Nội")
	f.dn.AddAgency(danang, "UBND thành phố Đà Nẵng")
	f.dn.AddAgency(danangDoJ, "Sở Tư pháp Đà Nẵng")
	f.cvn, f.chn, f.cdn = f.vn.Client(), f.hn.Client(), f.dn.Client()
	// Every bus sees every agency with the bus serving it.
	want := map[string]string{govOffice: "VN", hanoi: "HN", hanoiDoJ: "HN", danang: "DN", danangDoJ: "DN"}
	for _, c := range []*broker.Client{f.cvn, f.chn, f.cdn} {
		for code, bus := range want {
			eventually(t, "directory: "+code+" on bus "+bus, func() error {
				a, err := c.LookupAgency(context.Background(), code)
				if err != nil {
					return err
				}
				if a.Bus != bus {
					return fmt.Errorf("served by %q", a.Bus)
				}
				return nil
			})
		}
	}
	return f
}

// eventually retries fn until it succeeds; the cap only keeps a broken
// test from hanging, it is not a performance threshold.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	bustest.Eventually(t, 90*time.Second, what, fn)
}

func ctxT(t *testing.T) context.Context { return bustest.Context(t, 2*time.Minute) }

// receive reads agency's mailbox until want envelopes were handed over,
// then checks that nothing else comes.
func receive(t *testing.T, c *broker.Client, agency string, want int, opts ...broker.MailboxOption) []broker.Outcome {
	t.Helper()
	ctx := ctxT(t)
	var mu sync.Mutex
	var outs []broker.Outcome
	mb, err := c.Mailbox(ctx, agency, append(opts, broker.OnOutcome(func(o broker.Outcome) {
		mu.Lock()
		outs = append(outs, o)
		mu.Unlock()
	}))...)
	if err != nil {
		t.Fatal(err)
	}
	handed := 0
	eventually(t, fmt.Sprintf("mailbox of %s: %d envelopes", agency, want), func() error {
		n, err := mb.Fetch(ctx, want-handed, time.Second, func(context.Context, *broker.Delivery) error { return nil })
		handed += n
		if err != nil {
			return err
		}
		if handed < want {
			return fmt.Errorf("%d handed over", handed)
		}
		return nil
	})
	if n, err := mb.Fetch(ctx, 0, time.Second, func(context.Context, *broker.Delivery) error { return nil }); err != nil || n != 0 {
		t.Fatalf("mailbox of %s: %d more envelopes after the %d expected (%v)", agency, n, want, err)
	}
	for _, o := range outs {
		if !o.Verified || o.Duplicate {
			t.Fatalf("mailbox of %s: %+v", agency, o)
		}
	}
	return outs
}

func waitState(t *testing.T, c *broker.Client, id, recipient string, state envelope.State) *broker.Tracking {
	t.Helper()
	tr, err := c.WaitState(ctxT(t), id, recipient, state)
	if err != nil {
		t.Fatalf("%s for %s: want %s: %v", id, recipient, state, err)
	}
	return tr
}

// recordCount counts the messages on subject in a bus's record.
func recordCount(t *testing.T, c *broker.Client, subject string) uint64 {
	t.Helper()
	s, err := c.JetStream().Stream(ctxT(t), record.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctxT(t), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[subject]
}

func TestFederation(t *testing.T) {
	f := startFederation(t)

	t.Run("CrossBusSendWithAttachment", func(t *testing.T) {
		ctx := ctxT(t)
		content := strings.Repeat("Công văn liên tỉnh. ", 40000) // several parts
		e := envelope.New(hanoi, []string{danang, govOffice}, "Phối hợp liên tỉnh")
		res, err := f.chn.Send(ctx, e, broker.File{Name: "cong-van.txt", Reader: strings.NewReader(content), Size: int64(len(content))})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		outs := receive(t, f.cdn, danang, 1, broker.SaveAttachments(dir))
		if outs[0].ID != res.ID || outs[0].Delivery.Digest != res.Digest {
			t.Fatalf("received %+v, sent %s (%s)", outs[0], res.ID, res.Digest)
		}
		if got, err := os.ReadFile(filepath.Join(dir, res.ID, "cong-van.txt")); err != nil || string(got) != content {
			t.Fatalf("attachment on the destination bus: %d bytes, %v", len(got), err)
		}
		receive(t, f.cvn, govOffice, 1)
		// Receipts come back to the sender's bus.
		waitState(t, f.chn, res.ID, danang, envelope.StateDelivered)
		waitState(t, f.chn, res.ID, govOffice, envelope.StateDelivered)
		if _, err := f.cdn.Mark(ctx, danang, res.ID, envelope.StateAccepted, broker.MarkOptions{Note: "đã tiếp nhận"}); err != nil {
			t.Fatal(err)
		}
		tr := waitState(t, f.chn, res.ID, danang, envelope.StateAccepted)
		if tr.History[len(tr.History)-1].Note != "đã tiếp nhận" {
			t.Fatalf("history on the sender's bus: %+v", tr.History)
		}
		// The statuses on record at the sender's bus verify.
		sts, err := f.chn.Statuses(ctx, res.ID)
		if err != nil || len(sts) != 3 {
			t.Fatalf("statuses on the sender's bus: %d, %v", len(sts), err)
		}
		// Every bus keeps one copy per recipient it served or sent.
		for _, c := range []struct {
			c    *broker.Client
			subj string
		}{{f.chn, record.DocSubject(danang, hanoi)}, {f.cdn, record.DocSubject(danang, hanoi)}, {f.cvn, record.DocSubject(govOffice, hanoi)}} {
			if n := recordCount(t, c.c, c.subj); n != 1 {
				t.Fatalf("%s: %d copies on record", c.subj, n)
			}
		}
	})

	t.Run("TraceHops", func(t *testing.T) {
		ctx := ctxT(t)
		res, err := f.chn.Send(ctx, envelope.New(hanoiDoJ, []string{danang}, "Có dấu vết"))
		if err != nil {
			t.Fatal(err)
		}
		receive(t, f.cdn, danang, 1)
		s, err := f.cdn.JetStream().Stream(ctx, record.Stream)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetLastMsgForSubject(ctx, record.DocSubject(danang, hanoiDoJ))
		if err != nil {
			t.Fatal(err)
		}
		hops, err := federation.VerifyTrace(m.Header, m.Data, res.ID+"."+envelope.Token(danang), trustOf(f))
		if err != nil {
			t.Fatal(err)
		}
		var buses []string
		for _, h := range hops {
			buses = append(buses, h.Bus)
		}
		if !slices.Equal(buses, []string{"HN", "VN", "DN"}) {
			t.Fatalf("hops %v", buses)
		}
		// A changed trace does not verify.
		h := nats.Header{}
		vals := m.Header.Values(federation.HeaderTrace)
		h[federation.HeaderTrace] = []string{vals[0], vals[2]}
		if _, err := federation.VerifyTrace(h, m.Data, res.ID+"."+envelope.Token(danang), trustOf(f)); !errors.Is(err, federation.ErrTrace) {
			t.Fatalf("trace with a hop cut out: %v", err)
		}
	})

	t.Run("Status", func(t *testing.T) {
		ctx := ctxT(t)
		eventually(t, "links idle", func() error {
			for _, b := range []*bustest.FedBus{f.vn, f.hn, f.dn} {
				st, err := federation.QueryStatus(ctx, b.Service.Client.Conn())
				if err != nil {
					return err
				}
				for _, l := range st.Links {
					if l.State != federation.LinkUp || l.Backlog != 0 {
						return fmt.Errorf("bus %s: link %+v", b.ID, l)
					}
				}
			}
			return nil
		})
		st, err := federation.QueryStatus(ctx, f.hn.Service.Client.Conn())
		if err != nil {
			t.Fatal(err)
		}
		if st.Role != "member" || len(st.Links) != 1 || st.Links[0].Peer != "VN" || st.Links[0].LastDelivery == nil {
			t.Fatalf("status of HN: %+v", st)
		}
		fig := figures(st.Buses, "HN", "DN")
		if fig.Sent != 2 || fig.Delivered != 2 || fig.Failed != 0 {
			t.Fatalf("HN → DN figures on HN: %+v", fig)
		}
		if a := agencyFigures(st.Agencies, hanoi); a.Sent != 2 || a.Delivered != 2 {
			t.Fatalf("figures of %s on HN: %+v", hanoi, a)
		}
		vst, err := federation.QueryStatus(ctx, f.vn.Service.Client.Conn())
		if err != nil {
			t.Fatal(err)
		}
		if vst.Role != "national" || len(vst.Links) != 2 {
			t.Fatalf("status of VN: %+v", vst)
		}
		// The same figures on /metrics.
		reg := prometheus.NewRegistry()
		reg.MustRegister(f.hn.Fed.Collector())
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if v := metricValue(mfs, "docaxis_federation_envelopes_total", map[string]string{"from_bus": "HN", "to_bus": "DN", "outcome": "delivered"}); v != 2 {
			t.Fatalf("delivered HN → DN on /metrics: %v", v)
		}
		if v := metricValue(mfs, "docaxis_federation_link_up", map[string]string{"peer": "VN"}); v != 1 {
			t.Fatalf("link up on /metrics: %v", v)
		}
	})

	t.Run("NoSpoofingAcrossBuses", func(t *testing.T) {
		ctx := ctxT(t)
		// An agency's own credentials cannot publish as another agency,
		// nor into the federation's streams.
		agent := f.hn.Client(hanoi)
		forgedByAgency := envelope.New(danang, []string{govOffice}, "Giả danh Đà Nẵng")
		for _, subj := range []string{record.DocSubject(govOffice, danang), "axis.fedout.VN.doc." + envelope.Token(govOffice) + "." + envelope.Token(danang)} {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := agent.JetStream().PublishMsg(pctx, &nats.Msg{Subject: subj, Data: []byte(forgedByAgency.ID)})
			cancel()
			if err == nil {
				t.Fatalf("agency %s published on %s", hanoi, subj)
			}
		}
		// Bus HN's CA makes up a certificate for DN's agency; HN cannot
		// register it, and what it signs is refused by the national bus
		// and by DN, whichever way it enters.
		forger, err := f.hn.CA.Issue(danang, "Giả mạo", signing.IssueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		err = f.chn.RegisterAgency(ctx, broker.Agency{Code: danang, Name: "Giả mạo", Certificate: string(signing.EncodeCerts(forger.Chain...))})
		if !errors.Is(err, broker.ErrServedElsewhere) {
			t.Fatalf("registering DN's agency on HN: %v", err)
		}
		hnID, err := federation.LoadBusIdentity(filepath.Join(f.hn.Dir, "home", "federation"), "HN", f.hn.CA)
		if err != nil {
			t.Fatal(err)
		}
		vnID, err := federation.LoadBusIdentity(filepath.Join(f.vn.Dir, "home", "federation"), "VN", f.vn.CA)
		if err != nil {
			t.Fatal(err)
		}
		forged := func(to string) (*envelope.Envelope, []byte) {
			e := envelope.New(danang, []string{to}, "Giả mạo liên tỉnh")
			raw, err := forger.Seal(e)
			if err != nil {
				t.Fatal(err)
			}
			return e, raw
		}
		inject := func(c *broker.Client, subject string, e *envelope.Envelope, raw []byte, by ...*federation.BusIdentity) {
			m := &nats.Msg{Subject: subject, Data: raw, Header: nats.Header{}}
			id := e.ID + "." + envelope.Token(e.To[0])
			m.Header.Set(jetstream.MsgIDHeader, id)
			m.Header.Set(record.HeaderEnvelope, e.ID)
			var hops []federation.Hop
			for _, b := range by {
				h, err := federation.AppendHop(m.Header, b, hops, time.Now(), e.ID, id, raw)
				if err != nil {
					t.Fatal(err)
				}
				hops = append(hops, h)
			}
			if _, err := c.JetStream().PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		// 1. On HN's record: HN does not forward what none of its agencies sent.
		e1, raw1 := forged(govOffice)
		inject(f.chn, record.DocSubject(govOffice, danang), e1, raw1)
		// 2. Into HN's outbound stream, with HN's trace entry: the national
		// refuses it.
		e2, raw2 := forged(govOffice)
		inject(f.chn, "axis.fedout.VN.doc."+envelope.Token(govOffice)+"."+envelope.Token(danang), e2, raw2, hnID)
		// 3. Into the national's relay for DN, with HN's and VN's entries:
		// DN refuses it.
		e3, raw3 := forged(danangDoJ)
		inject(f.cvn, "axis.fedrelay.DN.doc."+envelope.Token(danangDoJ)+"."+envelope.Token(danang), e3, raw3, hnID, vnID)
		// Genuine envelopes behind them on the same paths arrive: the
		// forged ones were handled (each path keeps stream order).
		if _, err := f.chn.Send(ctx, envelope.New(hanoi, []string{govOffice, danangDoJ}, "Thật")); err != nil {
			t.Fatal(err)
		}
		for _, o := range append(receive(t, f.cvn, govOffice, 1), receive(t, f.cdn, danangDoJ, 1)...) {
			if o.From != hanoi {
				t.Fatalf("received %+v", o)
			}
		}
		for _, q := range []struct {
			c  *broker.Client
			id string
		}{{f.cvn, e2.ID}, {f.cdn, e3.ID}} {
			list, err := q.c.QuarantineList(ctx, "federation")
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, m := range list {
				if m.Envelope == q.id {
					found = strings.Contains(m.Reason, federation.ErrSpoofed.Error())
					if !found {
						t.Fatalf("quarantined for %q", m.Reason)
					}
				}
			}
			if !found {
				t.Fatalf("forged envelope %s not in quarantine: %+v", q.id, list)
			}
		}
		if list, _ := f.cvn.QuarantineList(ctx, "federation"); slices.ContainsFunc(list, func(q broker.Quarantined) bool { return q.Envelope == e1.ID }) {
			t.Fatal("HN forwarded an envelope none of its agencies sent")
		}
	})

	t.Run("NationalDownWhileSending", func(t *testing.T) {
		ctx := ctxT(t)
		f.vn.StopBus()
		eventually(t, "HN sees its uplink down", func() error {
			st, err := f.hn.Fed.Status(ctx)
			if err != nil {
				return err
			}
			if st.Links[0].State != federation.LinkDown {
				return fmt.Errorf("link %+v", st.Links[0])
			}
			return nil
		})
		var hnIDs, dnIDs []string
		for i := range 3 {
			res, err := f.chn.Send(ctx, envelope.New(hanoi, []string{danang}, fmt.Sprintf("Trong lúc mất kết nối %d", i)))
			if err != nil {
				t.Fatal(err)
			}
			hnIDs = append(hnIDs, res.ID)
			res, err = f.cdn.Send(ctx, envelope.New(danang, []string{hanoi}, fmt.Sprintf("Trả lời trong lúc mất kết nối %d", i)))
			if err != nil {
				t.Fatal(err)
			}
			dnIDs = append(dnIDs, res.ID)
		}
		// They wait, durably, on the senders' buses.
		eventually(t, "backlog on HN", func() error {
			st, err := f.hn.Fed.Status(ctx)
			if err != nil {
				return err
			}
			if st.Links[0].Backlog < 3 {
				return fmt.Errorf("link %+v", st.Links[0])
			}
			return nil
		})
		before := map[string]uint64{"dn": recordCount(t, f.cdn, record.DocSubject(danang, hanoi)), "hn": recordCount(t, f.chn, record.DocSubject(hanoi, danang))}
		f.vn.RestartBus()
		receive(t, f.cdn, danang, 3)
		receive(t, f.chn, hanoi, 3)
		for _, id := range hnIDs {
			waitState(t, f.chn, id, danang, envelope.StateDelivered)
		}
		for _, id := range dnIDs {
			waitState(t, f.cdn, id, hanoi, envelope.StateDelivered)
		}
		// Once each on record at the destinations.
		if n := recordCount(t, f.cdn, record.DocSubject(danang, hanoi)) - before["dn"]; n != 3 {
			t.Fatalf("DN record: %d new copies from %s, want 3", n, hanoi)
		}
		if n := recordCount(t, f.chn, record.DocSubject(hanoi, danang)) - before["hn"]; n != 3 {
			t.Fatalf("HN record: %d new copies from %s, want 3", n, danang)
		}
	})

	t.Run("MemberDownWhileMailWaits", func(t *testing.T) {
		ctx := ctxT(t)
		f.dn.StopBus()
		var ids []string
		for i := range 3 {
			res, err := f.chn.Send(ctx, envelope.New(hanoiDoJ, []string{danangDoJ}, fmt.Sprintf("Chờ Đà Nẵng %d", i)))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, res.ID)
		}
		// They reach the national bus and wait there for DN.
		eventually(t, "mail waiting on VN for DN", func() error {
			st, err := f.vn.Fed.Status(ctx)
			if err != nil {
				return err
			}
			for _, l := range st.Links {
				if l.Peer == "DN" {
					if l.State != federation.LinkDown || l.Backlog < 3 {
						return fmt.Errorf("link %+v", l)
					}
					return nil
				}
			}
			return errors.New("no link to DN")
		})
		f.dn.RestartBus()
		f.cdn = f.dn.Client()
		receive(t, f.cdn, danangDoJ, 3)
		for _, id := range ids {
			waitState(t, f.chn, id, danangDoJ, envelope.StateDelivered)
		}
	})

	t.Run("AuditReplayShowsHops", func(t *testing.T) {
		ctx := ctxT(t)
		r, err := audit.NewReader(f.cdn.JetStream(), audit.ReaderConfig{Verifier: f.cdn.Verifier()})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		_, err = r.Replay(ctx, audit.Query{Agency: danang, SkipChain: true}, func(rec *audit.Record) error {
			hops, err := r.Hops(ctx, rec)
			if err != nil {
				return fmt.Errorf("record %d: %w", rec.Seq, err)
			}
			if rec.Type != "document" {
				return nil
			}
			if !rec.Verified {
				return fmt.Errorf("record %d does not verify: %s", rec.Seq, rec.Reason)
			}
			var buses []string
			for _, h := range hops {
				if !h.Verified {
					return fmt.Errorf("record %d: hop %+v", rec.Seq, h)
				}
				buses = append(buses, h.Bus)
			}
			want := []string{"HN", "VN", "DN"}
			if rec.From == danang {
				want = nil // sent from here: no hops
			}
			if !slices.Equal(buses, want) {
				return fmt.Errorf("record %d from %s: hops %v (%s), want %v", rec.Seq, rec.From, buses, audit.FormatHops(hops), want)
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n < 5 {
			t.Fatalf("%d documents of %s replayed", n, danang)
		}
	})
}

func figures(fs []federation.Figures, from, to string) federation.Figures {
	for _, f := range fs {
		if f.FromBus == from && f.ToBus == to {
			return f
		}
	}
	return federation.Figures{}
}

func agencyFigures(fs []federation.Figures, agency string) federation.Figures {
	for _, f := range fs {
		if f.Agency == agency {
			return f
		}
	}
	return federation.Figures{}
}

// trustOf trusts each bus's CA for that bus's trace entries.
func trustOf(f *federationT) func(bus string) *signing.Trust {
	m := map[string]*signing.Trust{"VN": signing.NewTrust(f.vn.CA.Cert), "HN": signing.NewTrust(f.hn.CA.Cert), "DN": signing.NewTrust(f.dn.CA.Cert)}
	return func(bus string) *signing.Trust { return m[bus] }
}

// metricValue finds a counter or gauge by name and labels.
func metricValue(mfs []*dto.MetricFamily, name string, labels map[string]string) float64 {
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue next
				}
			}
			if m.Counter != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}
