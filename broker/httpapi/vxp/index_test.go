package vxp

import (
	"errors"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bucket"
	"github.com/docaxis/docaxis/broker/bustest"
)

// A status other than done writes the entry over the revision it read: an
// entry done meanwhile (purged by another request) is not brought back,
// and one changed meanwhile is not overwritten.
func TestIndexUpdateDoesNotBringBackADoneEntry(t *testing.T) {
	bus := bustest.Start(t)
	ctx := bustest.Context(t, time.Minute)
	c, err := broker.Connect(ctx, bus.URL(), broker.WithKeystore(bus.Keystore), broker.WithTrust(bus.Trust),
		broker.WithLogger(bustest.Logger()), broker.WithNATSOptions(bus.AdminOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	x, err := openIndex(ctx, c, bustest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	const sys = "sys.a"
	ids := []string{"01a24628-4494-7a99-8aae-658c437c41bc", "01a24628-44ac-7ce2-b34d-b999daf4fb5e"}
	for _, id := range ids {
		e := entry{Type: TypeEdoc, ID: id, Seq: 1, To: "000.00.00.H41", From: "000.00.00.G22", Stored: time.Now().UTC()}
		if err := x.create(ctx, waitKey(sys, e.Type, e.ID, e.To), e); err != nil {
			t.Fatal(err)
		}
	}
	read := func(id string) entry {
		t.Helper()
		list, err := x.find(ctx, sys, id)
		if err != nil || len(list) != 1 {
			t.Fatalf("find %s: %v %v", id, list, err)
		}
		return list[0]
	}

	done, processing := read(ids[0]), read(ids[0])
	if err := x.remove(ctx, done); err != nil {
		t.Fatal(err)
	}
	processing.Status = "processing"
	if err := x.update(ctx, processing); !errors.Is(err, errNotWaiting) {
		t.Errorf("update of an entry done meanwhile: %v, want errNotWaiting", err)
	}
	if list, err := x.find(ctx, sys, ids[0]); err != nil || len(list) != 0 {
		t.Errorf("entry done meanwhile is back: %v %v", list, err)
	}

	first, second := read(ids[1]), read(ids[1])
	for _, w := range []*entry{&first, &second} {
		w.Status, w.Fails = "fail", w.Fails+1
	}
	if err := x.update(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := x.update(ctx, second); !bucket.Conflict(err) {
		t.Errorf("update over an entry changed meanwhile: %v, want a conflict", err)
	}
}
