package record_test

import (
	"slices"
	"testing"

	"github.com/docaxis/docaxis/broker/record"
	"github.com/docaxis/docaxis/envelope"
	"github.com/nats-io/nats.go/jetstream"
)

const id = "01a24862-9cf6-71c1-a07e-4f77023dac04"

// Every name the record forms is read back by its one parser.
func TestNamesRoundTrip(t *testing.T) {
	for _, code := range []string{"000.00.00.H41", "000.00.15.H51", "A-1", "G22"} {
		if s, gotID, r, ok := record.SplitTrackKey(record.TrackKey(code, id, "000.00.00.G22")); !ok || s != envelope.Token(code) || gotID != id || r != "000_00_00_G22" {
			t.Errorf("SplitTrackKey(TrackKey(%s)) = %q, %q, %q, %v", code, s, gotID, r, ok)
		}
		for _, tc := range []struct {
			name  string
			parse func(string) (string, bool)
			form  func(string) string
		}{
			{"directory key", record.DirectoryAgencyOf, record.DirectoryKey},
			{"mailbox consumer", record.MailboxOfDurable, record.MailboxDurable},
			{"system consumer", record.SystemOfDurable, record.SystemDurable},
			{"quarantine subject", record.QuarantineAgency, record.QuarantineSubject},
		} {
			if got, ok := tc.parse(tc.form(code)); !ok || got != code {
				t.Errorf("%s of %s: read back %q, %v", tc.name, code, got, ok)
			}
		}
		if !record.IsDirectoryAgencyKey(record.DirectoryKey(code)) || record.IsDirectoryAgencyKey(record.DirectorySystemKey(code)) {
			t.Errorf("IsDirectoryAgencyKey of %s's keys", code)
		}
		if !record.IsDirectorySystemKey(record.DirectorySystemKey(code)) || record.IsDirectorySystemKey(record.DirectoryKey(code)) {
			t.Errorf("IsDirectorySystemKey of %s's keys", code)
		}
		if !record.IsStatusDurable(record.StatusDurable(code)) || record.IsStatusDurable(record.MailboxDurable(code)) {
			t.Errorf("IsStatusDurable of %s's consumers", code)
		}
		if got := record.MailboxAgencies(jetstream.ConsumerConfig{FilterSubject: record.MailboxFilter(code)}); !slices.Equal(got, []string{code}) {
			t.Errorf("MailboxAgencies(MailboxFilter(%s)) = %v", code, got)
		}
	}
}

// What another name, a pattern or a broken one holds is no agency.
func TestNamesRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		parse func(string) (string, bool)
		bad   []string
	}{
		{"directory key", record.DirectoryAgencyOf, []string{"agency.", "agency", "system.A", "fedbus.x", "crl.A", ""}},
		{"mailbox consumer", record.MailboxOfDurable, []string{"mbox_", "sys_A", "sbox_A", "xfer_A", "tracker", ""}},
		{"system consumer", record.SystemOfDurable, []string{"sys_", "mbox_A", "xfer_A", ""}},
		{"quarantine subject", record.QuarantineAgency, []string{"axis.quarantine.", "axis.doc.A.B", "axis.svc.quarantine.A", ""}},
	} {
		for _, s := range tc.bad {
			if got, ok := tc.parse(s); ok {
				t.Errorf("%s %q read as %q", tc.name, s, got)
			}
		}
	}
	for _, k := range []string{
		"A." + id, "A." + id + ".B.C", "." + id + ".B", "A." + id + ".", "A.not-an-id.B", "A.*.B", "", "A..B",
	} {
		if s, i, r, ok := record.SplitTrackKey(k); ok {
			t.Errorf("SplitTrackKey(%q) = %q, %q, %q", k, s, i, r)
		}
	}
	filters := []string{"A.*", "axis.A.*", "axis.doc.*.*", "axis.doc.>", "axis.doc.=sys_a.*", "axis.doc.A.B", "axis.status.A.*", "axis.doc..*", "axis.doc.A B.*", "axis.doc.A"}
	if got := record.MailboxAgencies(jetstream.ConsumerConfig{FilterSubjects: filters}); len(got) != 0 {
		t.Errorf("MailboxAgencies(%q) = %v, want none", filters, got)
	}
}

func TestTrackKeyFilter(t *testing.T) {
	for _, tc := range []struct {
		sender, id, recipient string
		want                  string
	}{
		{"000.00.00.G22", "", "", "000_00_00_G22.*.*"},
		{"", "", "000.00.00.H41", "*.*.000_00_00_H41"},
		{"", id, "", "*." + id + ".*"},
		{"", id, "000.00.00.H41", "*." + id + ".000_00_00_H41"},
		{"000.00.00.G22", id, "000.00.00.H41", record.TrackKey("000.00.00.G22", id, "000.00.00.H41")},
		{"", "", "", "*.*.*"},
	} {
		if got := record.TrackKeyFilter(tc.sender, tc.id, tc.recipient); got != tc.want {
			t.Errorf("TrackKeyFilter(%q, %q, %q) = %q, want %q", tc.sender, tc.id, tc.recipient, got, tc.want)
		}
	}
}

// FuzzSplitTrackKey: the parser never panics, and a key it accepts is the
// tracking key of the parts it returns.
func FuzzSplitTrackKey(f *testing.F) {
	for _, s := range []string{record.TrackKey("000.00.00.G22", id, "000.00.00.H41"), "a." + id + ".b", "a.b.c", "..", "a." + id + ".b.c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		s, i, r, ok := record.SplitTrackKey(key)
		if !ok {
			if s != "" || i != "" || r != "" {
				t.Fatalf("refused %q but returned %q, %q, %q", key, s, i, r)
			}
			return
		}
		if back := record.TrackKey(envelope.CodeFromToken(s), i, envelope.CodeFromToken(r)); back != key {
			t.Fatalf("SplitTrackKey(%q) = %q, %q, %q, which form %q", key, s, i, r, back)
		}
	})
}
