package record_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestWriteQuarantine(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth(), bustest.WithoutFiles())
	_, js := natstest.Connect(t, bus.URL(), bus.AdminOptions()...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qs, err := js.Stream(ctx, record.QuarantineStream)
	if err != nil {
		t.Fatal(err)
	}

	id := envelope.NewID()
	payload, _ := json.Marshal(map[string]any{"id": id})
	// Headers a hostile message carries: the entry's own replace them.
	forged := nats.Header{}
	forged.Set(record.HeaderReason, "all is fine")
	forged.Set(record.HeaderEnvelope, "00000000-0000-7000-8000-000000000000")
	forged.Set(record.HeaderOriginStream, "AXIS_TOKENS")
	forged.Set(record.HeaderOriginMsgID, "forged-origin")
	forged.Set(record.HeaderAgency, "000.00.00.H14")
	forged.Set(jetstream.MsgIDHeader, "forged")
	forged.Set("Nats-Expected-Stream", "AXIS")
	forged.Add(record.HeaderTrace, "hop1")
	forged.Add(record.HeaderTrace, "hop2")

	long := "bad\r\nInjected: yes\x00" + strings.Repeat("ư", record.MaxQuarantineReason)
	for _, tc := range []struct {
		name       string
		q          record.Quarantine
		wantHeader map[string]string // "" : absent
		trace      int
	}{
		{
			name: "record copy",
			q: record.Quarantine{Box: "000.00.00.H14", Data: []byte("not json"), Reason: "signature: bad",
				OriginSubject: record.DocSubject("000.00.00.H14", "000.00.00.G22"), OriginSeq: 7, Deliveries: 3,
				MsgID: record.QuarantineMsgID(7, "000.00.00.H14")},
			wantHeader: map[string]string{
				record.HeaderReason: "signature: bad", record.HeaderOriginSubject: "axis.doc.000_00_00_H14.000_00_00_G22",
				record.HeaderOriginSeq: "7", record.HeaderDeliveries: "3", record.HeaderAgency: "000.00.00.H14",
				record.HeaderEnvelope: "", record.HeaderOriginStream: "", jetstream.MsgIDHeader: "q.7.000_00_00_H14",
				record.HeaderOriginMsgID: "",
			},
		},
		{
			name: "federation, hostile headers and reason",
			q: record.Quarantine{Box: record.FederationBox, Data: payload, Reason: long, Header: forged,
				OriginSubject: "axis.fedrelay.b1.doc.x.y", OriginStream: "AXIS_FED_IN", OriginSeq: 9, Deliveries: 1,
				MsgID: record.FederationQuarantineMsgID("in_b1", 9)},
			wantHeader: map[string]string{
				record.HeaderAgency: record.FederationBox, record.HeaderOriginStream: "AXIS_FED_IN",
				record.HeaderEnvelope: id, record.HeaderOriginSeq: "9", jetstream.MsgIDHeader: "fq.in_b1.9",
				"Nats-Expected-Stream":   record.QuarantineStream, // ours, not the forged one
				record.HeaderOriginMsgID: "",                      // none given: the forged one is gone
			},
			trace: 2,
		},
		{
			name: "federation, taken over a link",
			q: record.Quarantine{Box: record.FederationBox, Data: payload, Reason: "refused", Header: forged,
				OriginSubject: "axis.fedout.b2.doc.x.y", OriginStream: "link:b1", OriginSeq: 4, Deliveries: 1,
				OriginMsgID: id + ".x", MsgID: record.FederationQuarantineMsgID("b1:AXIS_FED_OUT/fed_up", 4)},
			wantHeader: map[string]string{
				record.HeaderOriginStream: "link:b1", record.HeaderOriginMsgID: id + ".x",
				jetstream.MsgIDHeader: "fq.b1:AXIS_FED_OUT/fed_up.4",
			},
			trace: 2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ack, err := record.WriteQuarantine(ctx, js, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			m, err := qs.GetMsg(ctx, ack.Sequence)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != record.QuarantineSubject(tc.q.Box) || string(m.Data) != string(tc.q.Data) {
				t.Fatalf("entry on %s with %q", m.Subject, m.Data)
			}
			for k, want := range tc.wantHeader {
				if got := m.Header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if got := len(m.Header.Values(record.HeaderTrace)); got != tc.trace {
				t.Errorf("%d trace entries kept, want %d", got, tc.trace)
			}
			reason := m.Header.Get(record.HeaderReason)
			if len(reason) > record.MaxQuarantineReason || !utf8.ValidString(reason) || strings.ContainsAny(reason, "\r\n\x00") {
				t.Errorf("reason not fit for a header: %d bytes %q", len(reason), reason[:min(len(reason), 40)])
			}
			again, err := record.WriteQuarantine(ctx, js, tc.q)
			if err != nil || !again.Duplicate || again.Sequence != ack.Sequence {
				t.Errorf("writing the entry again: %+v, %v; want the same entry, duplicate", again, err)
			}
		})
	}
	if _, err := record.WriteQuarantine(ctx, js, record.Quarantine{Box: "000.00.00.H14", OriginSubject: "x"}); err == nil {
		t.Error("an entry without a message id was written")
	}
}
