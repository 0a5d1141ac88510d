package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
)

// The subscriber runs against a bus with authentication, as `docaxis
// serve` runs it, with the agency's credentials file.
func TestSubscriberSavesAndAccepts(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	bus.AddAgency("000.00.00.G22", "Văn phòng Chính phủ")
	bus.AddAgency("000.00.00.H41", "UBND tỉnh Nghệ An")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sender := bus.Client("000.00.00.G22")
	var ids []string
	for i, text := range []string{"Công văn một", "Công văn hai"} {
		res, err := sender.Send(ctx, envelope.New("000.00.00.G22", []string{"000.00.00.H41"}, text),
			broker.File{Name: "cv.txt", Reader: strings.NewReader(text), Size: int64(len(text))})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		ids = append(ids, res.ID)
	}
	dir := t.TempDir()
	var out bytes.Buffer
	if err := run(ctx, []string{"-server", bus.URL(), "-home", bus.Keystore.Dir, "-creds", bus.AgencyCreds("000.00.00.H41"), "-as", "000.00.00.H41",
		"-out", dir, "-accept", "-count", "2"}, &out); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&out)
	n := 0
	for dec.More() {
		var r record
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		if len(r.Attachments) != 1 {
			t.Fatalf("record %+v", r)
		}
		b, err := os.ReadFile(r.Attachments[0])
		if err != nil || !strings.HasPrefix(r.Subject, string(b)) {
			t.Fatalf("saved %q for %q: %v", b, r.Subject, err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d records, want 2", n)
	}
	for _, id := range ids {
		tr, err := sender.WaitState(ctx, id, "000.00.00.H41", envelope.StateAccepted)
		if err != nil {
			t.Fatalf("%s: %v (%+v)", id, err, tr)
		}
	}
}
