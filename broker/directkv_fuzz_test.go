package broker

import (
	"testing"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// FuzzDecodeDirect feeds arbitrary header blocks and payloads to the
// decoders of direct get replies: they never panic, and what they accept
// is a key of the bucket asked about, with a sequence.
func FuzzDecodeDirect(f *testing.F) {
	f.Add([]byte("NATS/1.0\r\nNats-Stream: KV_AXIS_DIRECTORY\r\nNats-Subject: $KV.AXIS_DIRECTORY.limits\r\nNats-Sequence: 7\r\nNats-Time-Stamp: 2025-03-01T00:00:00.5Z\r\n\r\n"), []byte(`{"max_recipients":2}`))
	f.Add([]byte("NATS/1.0\r\nNats-Subject: $KV.AXIS_DIRECTORY.agency.000_00_00_G22\r\nNats-Sequence: 3\r\nNats-Time-Stamp: 2025-03-01T00:00:00Z\r\nKV-Operation: DEL\r\n\r\n"), []byte{})
	f.Add([]byte("NATS/1.0 404 Message Not Found\r\n\r\n"), []byte{})
	f.Add([]byte("NATS/1.0 204 EOB\r\nNats-Num-Pending: 0\r\nNats-Last-Sequence: 12\r\nNats-UpTo-Sequence: 40\r\n\r\n"), []byte{})
	f.Add([]byte("NATS/1.0\r\nNats-Subject: $KV.AXIS_DIRECTORY.>\r\nNats-Sequence: 1\r\nNats-Time-Stamp: 2025-03-01T00:00:00Z\r\n\r\n"), []byte("x"))
	f.Fuzz(func(t *testing.T, hdr, data []byte) {
		h, err := nats.DecodeHeadersMsg(hdr)
		if err != nil {
			return
		}
		msg := &nats.Msg{Header: h, Data: data}
		if _, _, err := decodeDirectEnd(msg); err != nil {
			return
		}
		e, err := decodeDirect(record.DirectoryBucket, msg)
		if err != nil {
			return
		}
		if !record.ValidKey(e.Key()) || e.Revision() == 0 || e.Bucket() != record.DirectoryBucket {
			t.Fatalf("accepted %+v from %q", e, hdr)
		}
		if op := e.Operation(); op != jetstream.KeyValuePut && op != jetstream.KeyValueDelete && op != jetstream.KeyValuePurge {
			t.Fatalf("operation %v", op)
		}
	})
}
