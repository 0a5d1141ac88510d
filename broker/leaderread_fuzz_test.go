package broker

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// FuzzDecodeLeaderGet: whatever a server (or anything answering on its
// subject) sends back, the decoder returns a message or an error, never
// both, never neither, and never panics.
func FuzzDecodeLeaderGet(f *testing.F) {
	hdr := base64.StdEncoding.EncodeToString([]byte("NATS/1.0\r\nAxis-Envelope: 01a2\r\nKV-Operation: DEL\r\n\r\n"))
	for _, s := range []string{
		`{"type":"io.nats.jetstream.api.v1.stream_msg_get_response","message":{"subject":"axis.doc.a.b","seq":7,"hdrs":"` + hdr + `","data":"eyJ9","time":"2026-12-04T20:00:00Z"}}`,
		`{"error":{"code":404,"err_code":10037,"description":"no message found"}}`,
		`{"error":{"code":503,"err_code":10008,"description":"JetStream system temporarily unavailable"}}`,
		`{"message":{"subject":"x","seq":1,"hdrs":"TkFUUy8xLjANCg=="}}`,
		`{}`, `null`, `{"message":null}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeLeaderGet("AXIS", data)
		if (m == nil) == (err == nil) {
			t.Fatalf("message %v and error %v", m, err)
		}
		if err != nil && errors.Is(err, jetstream.ErrMsgNotFound) && m != nil {
			t.Fatal("not found with a message")
		}
	})
}
