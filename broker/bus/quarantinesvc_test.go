package bus_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bus"
	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go"
)

// natsHeader parses "Name: value" lines, as a NATS header block carries.
func natsHeader(s string) nats.Header {
	h := nats.Header{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return h
}

// The decoding of quarantine-service requests, case by case.
func TestQuarantineRequestDecoding(t *testing.T) {
	tok := envelope.Token(ngheAn)
	subject := "axis.svc.quarantine." + tok
	long := strings.Repeat("ư", broker.MaxQuarantineReason/2+1)
	tests := []struct {
		name, subject, header, body string
		code                        string
	}{
		{"quarantine", subject, "Docaxis-Origin-Seq: 12\nDocaxis-Deliveries: 3", "chữ ký sai", ""},
		{"default op", subject, "Docaxis-Origin-Seq: 12", "lý do", ""},
		{"check", subject, "Docaxis-Op: check\nDocaxis-Origin-Seq: 12", "", ""},
		{"no seq", subject, "", "lý do", "bad-request"},
		{"seq zero", subject, "Docaxis-Origin-Seq: 0", "lý do", "bad-request"},
		{"seq not a number", subject, "Docaxis-Origin-Seq: 1e3", "lý do", "bad-request"},
		{"seq negative", subject, "Docaxis-Origin-Seq: -4", "lý do", "bad-request"},
		{"two seqs", subject, "Docaxis-Origin-Seq: 12\nDocaxis-Origin-Seq: 13", "lý do", "bad-request"},
		{"deliveries not a number", subject, "Docaxis-Origin-Seq: 12\nDocaxis-Deliveries: many", "lý do", "bad-request"},
		{"deliveries too many", subject, "Docaxis-Origin-Seq: 12\nDocaxis-Deliveries: 99999999999", "lý do", "bad-request"},
		{"no reason", subject, "Docaxis-Origin-Seq: 12", "", "bad-request"},
		{"reason too long", subject, "Docaxis-Origin-Seq: 12", long, "bad-request"},
		{"reason not UTF-8", subject, "Docaxis-Origin-Seq: 12", "\xff\xfe", "bad-request"},
		{"reason with a line break", subject, "Docaxis-Origin-Seq: 12", "a\r\nDocaxis-Agency: x", "bad-request"},
		{"check with a body", subject, "Docaxis-Op: check\nDocaxis-Origin-Seq: 12", "x", "bad-request"},
		{"unknown op", subject, "Docaxis-Op: delete\nDocaxis-Origin-Seq: 12", "x", "bad-request"},
		{"bad token", "axis.svc.quarantine.a__b", "Docaxis-Origin-Seq: 12", "x", "bad-request"},
		{"two tokens", subject + ".x", "Docaxis-Origin-Seq: 12", "x", "bad-request"},
		{"wrong service", "axis.svc.files." + tok, "Docaxis-Origin-Seq: 12", "x", "bad-request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _, code := bus.DecodeQuarantineRequest(tc.subject, "_INBOX_"+tok+".a", natsHeader(tc.header), []byte(tc.body))
			if code != tc.code {
				t.Fatalf("code %q, want %q (request %+v)", code, tc.code, req)
			}
			if code == "" && (req.Agency != ngheAn || req.Seq != 12) {
				t.Fatalf("request %+v", req)
			}
		})
	}
	for reply, ok := range map[string]bool{
		"_INBOX_" + tok + ".abc.1": true, "_INBOX.abc.1": true, "_INBOX_" + envelope.Token(sonLa) + ".abc": false,
		"": false, "_INBOX_" + tok + ".": false, "_INBOX_" + tok + ".*": false, "_INBOX_" + tok + ".a..b": false, "axis.doc.x.y": false,
	} {
		if _, got, _ := bus.DecodeQuarantineRequest(subject, reply, natsHeader("Docaxis-Origin-Seq: 1"), []byte("x")); got != ok {
			t.Errorf("reply %q allowed = %v, want %v", reply, got, ok)
		}
	}
}

// FuzzQuarantineRequest: the decoding never panics, refuses with a known
// code, and accepts only what the service can act on.
func FuzzQuarantineRequest(f *testing.F) {
	tok := envelope.Token(ngheAn)
	for _, s := range []struct{ subject, reply, header, body string }{
		{"axis.svc.quarantine." + tok, "_INBOX_" + tok + ".x", "Docaxis-Origin-Seq: 12\nDocaxis-Deliveries: 3", "chữ ký sai"},
		{"axis.svc.quarantine." + tok, "_INBOX.x.y", "Docaxis-Op: check\nDocaxis-Origin-Seq: 7", ""},
		{"axis.svc.quarantine.a__b", "r", "Docaxis-Origin-Seq: 0", "\x00"},
		{"axis.svc.quarantine." + tok, "_INBOX_" + tok + ".*", "Docaxis-Op: quarantine\nDocaxis-Origin-Seq: 18446744073709551615", strings.Repeat("a", 3000)},
	} {
		f.Add(s.subject, s.reply, s.header, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, subject, reply, header string, body []byte) {
		req, replyOK, code := bus.DecodeQuarantineRequest(subject, reply, natsHeader(header), body)
		if replyOK && (strings.ContainsAny(reply, "*> \t\r\n") || strings.Contains(reply, "..") || strings.HasSuffix(reply, ".")) {
			t.Fatalf("reply %q accepted", reply)
		}
		if code != "" {
			if code != "bad-request" {
				t.Fatalf("refused with unknown code %q", code)
			}
			return
		}
		switch {
		case req.Seq == 0:
			t.Fatal("accepted without a sequence")
		case subject != record.QuarantineServiceSubject(req.Agency):
			t.Fatalf("agency %q from subject %q", req.Agency, subject)
		case req.Op != "quarantine" && req.Op != "check":
			t.Fatalf("op %q", req.Op)
		case req.Op == "check" && (len(body) != 0 || req.Reason != ""):
			t.Fatal("check with a body")
		case req.Op == "quarantine" && (req.Reason == "" || len(req.Reason) > broker.MaxQuarantineReason || !utf8.ValidString(req.Reason) ||
			strings.IndexFunc(req.Reason, unicode.IsControl) >= 0):
			t.Fatalf("reason %q accepted", req.Reason)
		}
	})
}
