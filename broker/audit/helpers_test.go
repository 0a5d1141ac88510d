package audit_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	govOffice = "000.00.00.G22"
	ngheAn    = "000.00.00.H41"
	sonLa     = "000.00.00.H14"
)

func ctxT(t testing.TB) context.Context { return bustest.Context(t, 60*time.Second) }

// auditBus is a test bus with a chainer running on its own connection.
type auditBus struct {
	*bustest.Bus
	t       testing.TB
	key     *audit.Key
	nc      *nats.Conn
	js      jetstream.JetStream
	chainer *audit.Chainer
}

func startAuditBus(t testing.TB) *auditBus {
	t.Helper()
	bus := bustest.Start(t)
	key, err := audit.OpenKey(filepath.Join(bus.Keystore.Dir, "audit"), bus.CA)
	if err != nil {
		t.Fatal(err)
	}
	ab := &auditBus{Bus: bus, t: t, key: key}
	ab.startChainer()
	t.Cleanup(ab.stopChainer)
	bus.AddAgency(govOffice, "Văn phòng Chính phủ")
	bus.AddAgency(ngheAn, "UBND tỉnh Nghệ An")
	bus.AddAgency(sonLa, "UBND tỉnh Sơn La")
	return ab
}

func (ab *auditBus) startChainer() {
	ab.t.Helper()
	nc, err := nats.Connect(ab.URL())
	if err != nil {
		ab.t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		ab.t.Fatal(err)
	}
	c, err := audit.StartChainer(ctxT(ab.t), js, audit.ChainerConfig{Key: ab.key, Interval: time.Hour, LeaseTTL: 2 * time.Second, Logger: bustest.Logger()})
	if err != nil {
		ab.t.Fatal(err)
	}
	ab.nc, ab.js, ab.chainer = nc, js, c
}

func (ab *auditBus) stopChainer() {
	if ab.chainer != nil {
		if _, err := ab.chainer.Stop(context.Background()); err != nil {
			ab.t.Errorf("stop chainer: %v", err)
		}
		ab.chainer = nil
	}
	if ab.nc != nil {
		ab.nc.Close()
		ab.nc = nil
	}
}

// restart restarts the bus and the chainer on the same data.
func (ab *auditBus) restart() {
	ab.stopChainer()
	ab.Restart()
	ab.startChainer()
}

// checkpoint links everything stored so far and signs a checkpoint.
func (ab *auditBus) checkpoint() *audit.SignedCheckpoint {
	ab.t.Helper()
	cp, err := ab.chainer.Checkpoint(ctxT(ab.t))
	if err != nil {
		ab.t.Fatal(err)
	}
	return cp
}

func (ab *auditBus) reader() *audit.Reader {
	ab.t.Helper()
	c := ab.Client()
	r, err := audit.NewReader(c.JetStream(), audit.ReaderConfig{Verifier: c.Verifier(), Store: c.Store()})
	if err != nil {
		ab.t.Fatal(err)
	}
	return r
}

// send sends a document from one agency to others and returns its id.
func (ab *auditBus) send(from string, to ...string) string {
	ab.t.Helper()
	e := envelope.New(from, to, "Về việc kiểm tra nhật ký")
	res, err := ab.Client(from).Send(ctxT(ab.t), e)
	if err != nil {
		ab.t.Fatal(err)
	}
	return res.ID
}

func replayAll(t testing.TB, r *audit.Reader, q audit.Query) ([]*audit.Record, *audit.Stats) {
	t.Helper()
	var recs []*audit.Record
	st, err := r.Replay(ctxT(t), q, func(rec *audit.Record) error { recs = append(recs, rec); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return recs, st
}
