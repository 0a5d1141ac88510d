package audit_test

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/audit"
)

// A bundle the bus never wrote is refused before it is decompressed:
// each case names the entry and the limit (or what is wrong with it), and
// none makes the verifier allocate more than a few megabytes.
func TestVerifyRefusesCraftedZips(t *testing.T) {
	att := "attachments/" + strings.Repeat("ab", 32)
	rec := audit.RecordFile(1)
	many := func(n int, size int) []zipEntry {
		var es []zipEntry
		for i := range n {
			es = append(es, zipEntry{name: audit.RecordFile(uint64(i + 1)), data: make([]byte, size)})
		}
		return es
	}
	smallBombs := func(n int) []zipEntry {
		var es []zipEntry
		for i := range n {
			es = append(es, zipEntry{name: audit.RecordFile(uint64(i + 1)), raw: zeroBomb(1), real: 1 << 20})
		}
		return es
	}
	tests := []struct {
		name    string
		zip     []byte
		limits  audit.VerifyLimits
		limit   string // the LimitError's Limit, "" for another refusal
		entry   string // the entry the error names ("" for the bundle)
		message string // in the error's text
	}{
		{name: "zip bomb of a GiB declared as such", zip: craftZip(t, zipEntry{name: rec, raw: zeroBomb(1024), real: 1 << 30}),
			limit: "EntrySize", entry: rec, message: "--max-entry-size"},
		{name: "zip bomb under the entry limit", zip: craftZip(t, zipEntry{name: audit.ManifestFile, raw: zeroBomb(200), real: 200 << 20}),
			limit: "Ratio", entry: audit.ManifestFile, message: "--max-ratio"},
		{name: "many small bombs", zip: craftZip(t, smallBombs(200)...),
			limit: "Ratio", message: "the files read into memory decompress"},
		{name: "zip bomb declaring a small size", zip: craftZip(t, zipEntry{name: audit.ManifestFile, raw: zeroBomb(1024), declared: 100}),
			entry: audit.ManifestFile, message: "manifest.json"},
		{name: "huge declared size", zip: craftZip(t, zipEntry{name: rec, data: []byte("x"), declared: 1 << 40}),
			limit: "EntrySize", entry: rec, message: "1099511627776 bytes"},
		{name: "impossible declared size", zip: craftZip(t, zipEntry{name: rec, data: []byte("x"), declared: -1}),
			entry: rec, message: "impossible size"},
		{name: "attachment over its limit", zip: craftZip(t, zipEntry{name: att, data: []byte("x"), declared: 6 << 30}),
			limit: "AttachmentSize", entry: att, message: "--max-attachment-size"},
		{name: "too many entries", zip: craftZip(t, many(51, 1)...), limits: audit.VerifyLimits{Entries: 50},
			limit: "Entries", message: "51 entries, more than the limit of 50"},
		{name: "too much in all", zip: craftZip(t, many(3, 4000)...), limits: audit.VerifyLimits{TotalSize: 10000},
			limit: "TotalSize", message: "--max-total-size"},
		{name: "overlapping entries", zip: overlappingZip(1000, make([]byte, 64<<10)),
			message: "share compressed data"},
		{name: "climbing name", zip: craftZip(t, zipEntry{name: "../manifest.json", data: []byte("{}")}),
			entry: "../manifest.json", message: "not a clean relative path"},
		{name: "climbing inside", zip: craftZip(t, zipEntry{name: "records/../../x", data: []byte("x")}),
			entry: "records/../../x", message: "not a clean relative path"},
		{name: "absolute name", zip: craftZip(t, zipEntry{name: "/etc/passwd", data: []byte("x")}),
			entry: "/etc/passwd", message: "not a clean relative path"},
		{name: "backslash", zip: craftZip(t, zipEntry{name: `records\..\x`, data: []byte("x")}),
			entry: `records\..\x`, message: `'\'`},
		{name: "drive letter", zip: craftZip(t, zipEntry{name: "C:x", data: []byte("x")}),
			entry: "C:x", message: "':'"},
		{name: "deeply nested", zip: craftZip(t, zipEntry{name: strings.Repeat("a/", 60) + "x", data: []byte("x")}),
			message: "61 levels deep"},
		{name: "bidirectional override", zip: craftZip(t, zipEntry{name: "records/\u202egpj.jws", data: []byte("x")}),
			message: "U+202E"},
		{name: "control character", zip: craftZip(t, zipEntry{name: "records/x\n.jws", data: []byte("x")}),
			message: "U+000A"},
		{name: "long name", zip: craftZip(t, zipEntry{name: "records/" + strings.Repeat("9", 300), data: []byte("x")}),
			message: "name of 308 bytes"},
		{name: "duplicate name", zip: craftZip(t, zipEntry{name: audit.ManifestFile, data: []byte("{}")}, zipEntry{name: audit.ManifestFile, data: []byte("{}")}),
			entry: audit.ManifestFile, message: "appears twice"},
		{name: "names differing in case", zip: craftZip(t, zipEntry{name: audit.ManifestFile, data: []byte("{}")}, zipEntry{name: "MANIFEST.json", data: []byte("{}")}),
			entry: "MANIFEST.json", message: "differ only in case"},
		{name: "symbolic link", zip: craftZip(t, zipEntry{name: audit.CAFile, data: []byte("/etc/ssl/ca.pem"), mode: fs.ModeSymlink | 0o777}),
			entry: audit.CAFile, message: "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			rep, err := verifyBytes(tt.zip, audit.VerifyOptions{Limits: tt.limits})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, audit.ErrBundle) {
				t.Fatalf("err = %v, want ErrBundle", err)
			}
			if rep != nil && rep.Records != 0 {
				t.Fatalf("report of a refused bundle: %+v", rep)
			}
			var le *audit.LimitError
			if isLimit := errors.As(err, &le); isLimit != (tt.limit != "") {
				t.Fatalf("err %v: limit error %v, want %v", err, isLimit, tt.limit != "")
			}
			if le != nil && (le.Limit != tt.limit || le.Entry != tt.entry || !errors.Is(err, audit.ErrBundleLimit)) {
				t.Fatalf("limit error %+v, want limit %s entry %q", le, tt.limit, tt.entry)
			}
			if tt.entry != "" && !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.entry)) && !strings.Contains(err.Error(), tt.entry+":") {
				t.Errorf("error does not name %q: %v", tt.entry, err)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not say %q", err, tt.message)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Errorf("verifying a %d-byte zip allocated %d bytes", len(tt.zip), grew)
			}
			t.Log(err)
		})
	}
}

// An honest bundle passes the defaults; the limits are there to be
// raised: tight ones refuse it naming the file, lifted ones let it pass.
func TestVerifyLimitsOverridable(t *testing.T) {
	b := synthBundle(t, 5)
	if rep, err := verifyBytes(b, audit.VerifyOptions{}); err != nil || rep.Verified != 5 {
		t.Fatalf("defaults: %v (%+v)", err, rep)
	}
	_, err := verifyBytes(b, audit.VerifyOptions{Limits: audit.VerifyLimits{EntrySize: 1000}})
	var le *audit.LimitError
	if !errors.As(err, &le) || le.Limit != "EntrySize" || le.Entry == "" {
		t.Fatalf("tight limit: err = %v", err)
	}
	lifted := audit.VerifyLimits{Entries: -1, EntrySize: -1, AttachmentSize: -1, TotalSize: -1, Ratio: -1}
	if rep, err := verifyBytes(b, audit.VerifyOptions{Limits: lifted}); err != nil || rep.Verified != 5 {
		t.Fatalf("lifted: %v (%+v)", err, rep)
	}
	// Lifted limits trust the declared sizes no further than the data goes.
	huge := craftZip(t, zipEntry{name: audit.ManifestFile, data: []byte("{}"), declared: 1 << 61})
	if _, err := verifyBytes(huge, audit.VerifyOptions{Limits: lifted}); !errors.Is(err, audit.ErrBundle) {
		t.Fatalf("lifted limits, 2 EiB declared: err = %v", err)
	}
	// A bundle a zip tool wrote again, with folder entries, still reads.
	bf := unpack(t, b)
	bf.names = append([]string{"records/", "certs/"}, bf.names...)
	bf.data["records/"], bf.data["certs/"] = nil, nil
	if _, err := verifyBytes(bf.pack(t, false), audit.VerifyOptions{}); err != nil {
		t.Fatalf("with folder entries: %v", err)
	}
}

// The attachment default must take any attachment the bus accepts by
// default.
func TestAttachmentLimitCoversTheBus(t *testing.T) {
	if audit.DefaultMaxAttachmentSize < broker.DefaultLimits.MaxAttachmentSize {
		t.Fatalf("DefaultMaxAttachmentSize %d < the bus's MaxAttachmentSize %d", audit.DefaultMaxAttachmentSize, broker.DefaultLimits.MaxAttachmentSize)
	}
}
