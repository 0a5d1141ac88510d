package bus_test

import (
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Two processes of one bus (two `serve` on a cluster): exactly one judges
// the publish rate, the other answers with its verdicts, so a copy has
// one verdict whichever process a recipient asks; when the judging one
// stops, the other takes over and judges what comes next.
func TestRateGateOneJudgeAmongProcesses(t *testing.T) {
	tb := threeAgencies(t)
	l := broker.DefaultLimits
	l.PublishRate = 1
	if err := tb.Service.Client.SetLimits(ctxT(t), l); err != nil {
		t.Fatal(err)
	}
	second, stopSecond := tb.StartProcess(t)
	services := []*bus.Service{tb.Service, second}
	waitJudges := func(svcs ...*bus.Service) *bus.Service {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			var judges []*bus.Service
			for _, s := range svcs {
				if s.RateJudging() {
					judges = append(judges, s)
				}
			}
			if len(judges) == 1 {
				return judges[0]
			}
			if len(judges) > 1 {
				t.Fatalf("%d processes judge the publish rate at once", len(judges))
			}
		}
		t.Fatal("no process judges the publish rate")
		return nil
	}
	judge := waitJudges(services...)

	flood := func(n int) []uint64 {
		t.Helper()
		var seqs []uint64
		for range n {
			e := envelope.New(ngheAn, []string{sonLa}, "Dồn dập")
			raw, err := tb.Identity(ngheAn).Seal(e)
			if err != nil {
				t.Fatal(err)
			}
			m := nats.NewMsg(record.DocSubject(sonLa, ngheAn))
			m.Data = raw
			m.Header.Set(jetstream.MsgIDHeader, record.DocMsgID(e.ID, sonLa))
			ack, err := tb.Client().JetStream().PublishMsg(ctxT(t), m)
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, ack.Sequence)
		}
		return seqs
	}
	verdicts := func(svcs []*bus.Service, seqs []uint64) (refused int) {
		t.Helper()
		for _, seq := range seqs {
			var got []bool
			for _, s := range svcs {
				r, err := s.RateVerdict(ctxT(t), seq)
				if err != nil {
					t.Fatalf("verdict of #%d: %v", seq, err)
				}
				got = append(got, r)
			}
			for _, r := range got[1:] {
				if r != got[0] {
					t.Fatalf("copy #%d has two verdicts: %v", seq, got)
				}
			}
			if got[0] {
				refused++
			}
		}
		return refused
	}
	if n := verdicts(services, flood(8)); n < 5 {
		t.Fatalf("%d of 8 copies of a flood refused", n)
	}

	// The judging process stops; the other takes over.
	other := second
	if judge == second {
		other = tb.Service
	}
	if judge == tb.Service {
		judge.Stop()
		tb.Service = nil
	} else {
		stopSecond()
	}
	waitJudges(other)
	if n := verdicts([]*bus.Service{other}, flood(8)); n < 5 {
		t.Fatalf("after the handover %d of 8 copies of a flood refused", n)
	}
}
