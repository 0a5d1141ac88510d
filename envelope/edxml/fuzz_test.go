package edxml_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

// FuzzParse: no input makes Parse panic or hang, every refusal is a
// *ParseError, and whatever Parse accepts can be converted, written and
// read again.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.edxml")
	samples, _ := filepath.Glob(filepath.Join(samplesDir, "*.edxml"))
	for _, p := range append(seeds, samples...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("\xef\xbb\xbf<edXMLEnvelope><edXMLHeader><MessageHeader><From><OrganId>x</OrganId></From><StatusCode>1</StatusCode></MessageHeader></edXMLHeader></edXMLEnvelope>"))

	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := edxml.Parse(bytes.NewReader(data), edxml.WithMaxSize(1<<20), edxml.WithMaxElements(5000))
		if err != nil {
			var pe *edxml.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error is %T, not *ParseError: %v", err, err)
			}
			return
		}
		opts := edxml.ImportOptions{ID: "0190f0e8-8c2a-7b3e-9d41-2f6a8b0c1d2e", Now: func() time.Time { return time.Unix(1700000000, 0) }}
		e, atts, err := m.ToEnvelope(opts)
		if err != nil {
			t.Fatalf("ToEnvelope of a parsed message: %v", err)
		}
		contents := make(map[string][]byte)
		for _, a := range atts {
			rc, err := a.Open()
			if err != nil {
				continue // undecodable content, flagged at parse
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("attachment %q passed the check but fails to decode: %v", a.Name, err)
			}
			if a.Size >= 0 && int64(len(b)) != a.Size {
				t.Fatalf("attachment %q: %d bytes, size said %d", a.Name, len(b), a.Size)
			}
			contents[a.Name] = b
			e.Attachments = append(e.Attachments, envelope.Attachment{Name: a.Name, MediaType: a.MediaType, Size: int64(len(b)), Key: a.Name})
		}
		open := func(a envelope.Attachment) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(contents[a.Key])), nil
		}
		var out bytes.Buffer
		if err := edxml.Write(&out, e, open); err != nil {
			t.Fatalf("Write: %v", err)
		}
		m2, err := edxml.Parse(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatalf("written file does not parse: %v\n%s", err, out.Bytes())
		}
		if m2.IsStatus() != m.IsStatus() {
			t.Fatal("message kind changed")
		}
		e2, _, err := m2.ToEnvelope(opts)
		if err != nil {
			t.Fatalf("ToEnvelope(written): %v", err)
		}
		if e2.Kind != e.Kind || e2.From != e.From || e2.Subject != e.Subject || e2.Body != e.Body || e2.Reason != e.Reason {
			t.Fatalf("envelope changed:\n%+v\n%+v", e, e2)
		}
	})
}
