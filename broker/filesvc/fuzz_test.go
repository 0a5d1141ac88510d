package filesvc_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker/filesvc"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/storage"
	"github.com/nats-io/nats.go"
)

// header parses "Name: value" lines, as a NATS header block would carry.
func header(s string) nats.Header {
	h := nats.Header{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			h.Add(k, strings.TrimSpace(v))
		}
	}
	return h
}

var codes = map[string]bool{"bad-request": true, "invalid-key": true}

// FuzzRequest feeds the service's decoding of requests and transfer
// messages: it must never panic, must answer every refusal with a known
// code, and must accept only what the service can act on.
func FuzzRequest(f *testing.F) {
	key := storage.Key(strings.Repeat("ab", 32))
	tok := envelope.Token("000.00.00.G22")
	for _, seed := range []struct{ subject, reply, header string }{
		{"axis.svc.files." + tok + ".get", "_INBOX_" + tok + ".x", "Axis-File-Msg: request\nAxis-File-Key: " + key + "\nAxis-File-Window: 4"},
		{"axis.svc.files." + tok + ".stat", "_INBOX.x.y", "Axis-File-Msg: request\nAxis-File-Key: " + key},
		{"axis.svc.files." + tok + ".put", "r", "Axis-File-Msg: request\nAxis-File-Size: 10\nAxis-File-Media-Type: application/pdf\nAxis-File-Version: 1"},
		{"axis.svc.files." + tok + ".put", "r.*", "Axis-File-Msg: request\nAxis-File-Size: -1"},
		{"axis.svc.files.a__b.put", "r", "Axis-File-Msg: request"},
		{"axis.svc.files." + tok + ".t.0011.aabb", "r", "Axis-File-Msg: chunk\nAxis-File-Seq: 1"},
		{"axis.svc.files." + tok + ".t.0011.aabb", "", "Axis-File-Msg: eof\nAxis-File-Seq: 3\nAxis-File-Size: 100"},
		{"axis.svc.files." + tok + ".t.0011.aabb", "", "Axis-File-Msg: ack\nAxis-File-Seq: 99999999999999999999"},
		{"axis.svc.files." + tok + ".t.0011.aabb", "", "Axis-File-Msg: cancel"},
		{"axis.svc.files..get", "", ""},
		{"axis.svc.files", "", "Axis-File-Msg: request"},
	} {
		f.Add(seed.subject, seed.reply, seed.header, []byte("data"))
	}
	f.Fuzz(func(t *testing.T, subject, reply, hdr string, data []byte) {
		h := header(hdr)
		if d, err := filesvc.DecodeRequest(subject, reply, h); err != nil {
			checkRefusal(t, err)
		} else {
			if d.Op != "put" && d.Op != "get" && d.Op != "stat" {
				t.Fatalf("accepted op %q", d.Op)
			}
			if subject != "axis.svc.files."+d.Token+"."+d.Op || strings.ContainsAny(d.Token, ".*> ") {
				t.Fatalf("subject %q accepted as token %q op %q", subject, d.Token, d.Op)
			}
			if err := envelope.CheckNonStandardCode(envelope.CodeFromToken(d.Token)); err != nil {
				t.Fatalf("accepted token %q: %v", d.Token, err)
			}
			if reply == "" || strings.ContainsAny(reply, "*> \t\r\n") {
				t.Fatalf("accepted reply %q", reply)
			}
			if d.Op != "put" {
				if sha, err := storage.CheckKey(d.Key); err != nil || sha != d.SHA {
					t.Fatalf("accepted key %q: %v", d.Key, err)
				}
			}
			if d.Size < -1 || d.Window < 0 || d.Window > 64 {
				t.Fatalf("accepted size %d, window %d", d.Size, d.Window)
			}
		}
		if d, err := filesvc.DecodeFrame(subject, reply, h, data); err != nil {
			checkRefusal(t, err)
		} else {
			switch d.Kind {
			case "chunk":
				if d.Seq < 1 || d.DataLen < 1 || d.DataLen > filesvc.ChunkSize {
					t.Fatalf("accepted chunk %d of %d bytes", d.Seq, d.DataLen)
				}
			case "eof":
				if d.Seq < 1 || d.Size < 0 {
					t.Fatalf("accepted eof %d of size %d", d.Seq, d.Size)
				}
			case "ack":
				if d.Seq < 1 {
					t.Fatalf("accepted ack %d", d.Seq)
				}
			case "cancel":
			default:
				t.Fatalf("accepted kind %q", d.Kind)
			}
			if !strings.HasPrefix(subject, "axis.svc.files."+d.Token+".t.") {
				t.Fatalf("subject %q accepted as token %q", subject, d.Token)
			}
		}
	})
}

func checkRefusal(t *testing.T, err error) {
	t.Helper()
	code := filesvc.ErrorCode(err)
	if !codes[code] {
		t.Fatalf("refusal %v has code %q", err, code)
	}
	if errors.Unwrap(err) != nil {
		t.Fatalf("refusal %v wraps something", err)
	}
}
