package edxml_test

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope/edxml"
)

var fixedNow = func() time.Time { return time.Date(2024, 3, 20, 1, 2, 3, 0, time.UTC) }

type roundTripCase struct {
	name string
	path func(t testing.TB) string
	// badContent: the file has attachments whose content is not base64 (the
	// real sample carries a test-tool placeholder); they cannot be stored,
	// so they cannot come back.
	badContent bool
}

func roundTripCases(t *testing.T) []roundTripCase {
	cases := []roundTripCase{
		{name: "sample/edoc.edxml", path: func(t testing.TB) string { return samplePath(t, "edoc.edxml") }, badContent: true},
		{name: "sample/status_processing_05.edxml", path: func(t testing.TB) string { return samplePath(t, "status_processing_05.edxml") }},
		{name: "sample/status_rejection_02.edxml", path: func(t testing.TB) string { return samplePath(t, "status_rejection_02.edxml") }},
	}
	for _, pattern := range []string{"doc_*.edxml", "status_*.edxml", "messy_*.edxml"} {
		files, err := filepath.Glob(filepath.Join("testdata", pattern))
		if err != nil || len(files) == 0 {
			t.Fatalf("no fixtures %s: %v", pattern, err)
		}
		for _, f := range files {
			f := f
			cases = append(cases, roundTripCase{name: f, path: func(testing.TB) string { return f }})
		}
	}
	return cases
}

// TestRoundTrip imports each file into an envelope, exports the envelope
// to edXML and imports that again: every header field must come back with
// the same value, and so must the envelope.
func TestRoundTrip(t *testing.T) {
	for _, tc := range roundTripCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			m1 := parseFile(t, tc.path(t))
			opts := edxml.ImportOptions{ID: "0190f0e8-8c2a-7b3e-9d41-2f6a8b0c1d2e", Now: fixedNow}
			e1, atts1, err := m1.ToEnvelope(opts)
			if err != nil {
				t.Fatalf("ToEnvelope: %v", err)
			}
			store := newMemStore()
			storeDecodable(t, e1, atts1, store)
			if !tc.badContent && len(e1.Attachments) != len(atts1) {
				t.Fatalf("stored %d of %d attachments", len(e1.Attachments), len(atts1))
			}

			var out bytes.Buffer
			if err := edxml.Write(&out, e1, store.open); err != nil {
				t.Fatalf("Write: %v", err)
			}
			m2, err := edxml.Parse(bytes.NewReader(out.Bytes()))
			if err != nil {
				t.Fatalf("Parse(Write output): %v\n%s", err, out.String())
			}
			if len(m2.Warnings) > 0 && !hasNonStandardOnly(m2.Warnings) {
				t.Errorf("written file draws warnings: %q", m2.Warnings)
			}

			switch d1 := m1.Document(); {
			case d1 != nil:
				d2 := m2.Document()
				if d2 == nil {
					t.Fatal("document came back as a status")
				}
				diffJSON(t, "MessageHeader", js(t, d1.MessageHeader), js(t, d2.MessageHeader))
				diffJSON(t, "TraceHeaderList", js(t, d1.TraceHeaderList), js(t, d2.TraceHeaderList))
				diffJSON(t, "Extensions", js(t, d1.Extensions), js(t, d2.Extensions))
				for i, a2 := range d2.Attachments {
					var a1 *edxml.Attachment
					for j := range d1.Attachments {
						if d1.Attachments[j].ContentID == a2.ContentID {
							a1 = &d1.Attachments[j]
						}
					}
					if a1 == nil {
						t.Errorf("attachment %d (%s) has no original", i, a2.ContentID)
						continue
					}
					if a1.AttachmentName != a2.AttachmentName {
						t.Errorf("attachment name %q came back as %q", a1.AttachmentName, a2.AttachmentName)
					}
					if !bytes.Equal(readAll(t, a1.Open), readAll(t, a2.Open)) {
						t.Errorf("attachment %q content differs", a1.AttachmentName)
					}
				}
				if want := countDecodable(d1.Attachments); len(d2.Attachments) != want {
					t.Errorf("%d attachments came back, want %d", len(d2.Attachments), want)
				}
			default:
				s1, s2 := m1.Status(), m2.Status()
				if s2 == nil {
					t.Fatal("status came back as a document")
				}
				diffJSON(t, "status MessageHeader", js(t, s1.MessageHeader), js(t, s2.MessageHeader))
				diffJSON(t, "status TraceHeaderList", js(t, s1.TraceHeaderList), js(t, s2.TraceHeaderList))
			}

			e2, atts2, err := m2.ToEnvelope(opts)
			if err != nil {
				t.Fatalf("ToEnvelope(second): %v", err)
			}
			storeDecodable(t, e2, atts2, store)
			if tc.badContent {
				// The undecodable attachments were never stored.
				delete(e1.Extra, edxml.KeyAttachments)
				delete(e2.Extra, edxml.KeyAttachments)
			}
			diffJSON(t, "envelope", js(t, e1), js(t, e2))
		})
	}
}

// TestWriteMessage writes parsed messages back directly (without an
// envelope) and reads them again.
func TestWriteMessage(t *testing.T) {
	for _, tc := range roundTripCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			m1 := parseFile(t, tc.path(t))
			var out bytes.Buffer
			var err error
			if d := m1.Document(); d != nil {
				if tc.badContent {
					d.Attachments = nil // cannot be re-encoded
				}
				err = edxml.WriteDocument(&out, d)
			} else {
				err = edxml.WriteStatus(&out, m1.Status())
			}
			if err != nil {
				t.Fatalf("write: %v", err)
			}
			m2, err := edxml.Parse(&out)
			if err != nil {
				t.Fatalf("Parse(written): %v\n%s", err, out.String())
			}
			if d1 := m1.Document(); d1 != nil {
				d2 := m2.Document()
				diffJSON(t, "MessageHeader", js(t, d1.MessageHeader), js(t, d2.MessageHeader))
				diffJSON(t, "TraceHeaderList", js(t, d1.TraceHeaderList), js(t, d2.TraceHeaderList))
				if !bytes.Equal(d1.Signature, d2.Signature) {
					t.Errorf("signature not kept verbatim")
				}
			} else {
				diffJSON(t, "status", js(t, m1.Status().MessageHeader), js(t, m2.Status().MessageHeader))
			}
		})
	}
}

func countDecodable(atts []edxml.Attachment) int {
	n := 0
	for _, a := range atts {
		if a.Err == nil {
			n++
		}
	}
	return n
}

// hasNonStandardOnly: what Write produces may only be flagged for what the
// input already had: codes out of the standard and unknown elements.
func hasNonStandardOnly(warnings []string) bool {
	for _, w := range warnings {
		if !hasWarning([]string{w}, "not in the standard form") && !hasWarning([]string{w}, "kept as an extension") {
			return false
		}
	}
	return true
}
