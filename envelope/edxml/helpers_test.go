package edxml_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

// samplesDir holds the real edXML samples shared by the project. CI must
// have them; a local checkout without them skips those tests.
const samplesDir = "../../../shared/testdata/edxml"

func samplePath(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(samplesDir, name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("real edXML sample missing in CI: %v", err)
		}
		t.Skipf("real edXML sample not available: %v", err)
	}
	return p
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseFile(t testing.TB, path string) *edxml.Message {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := edxml.Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return m
}

// memStore is an attachment store for tests: content-addressed, in memory.
type memStore struct{ objects map[string][]byte }

func newMemStore() *memStore { return &memStore{objects: make(map[string][]byte)} }

func (s *memStore) put(name, mediaType string, r io.Reader) (envelope.Attachment, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return envelope.Attachment{}, err
	}
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	s.objects["sha256/"+h] = b
	return envelope.Attachment{Name: name, MediaType: mediaType, Size: int64(len(b)), SHA256: h, Key: "sha256/" + h}, nil
}

func (s *memStore) open(a envelope.Attachment) (io.ReadCloser, error) {
	b, ok := s.objects[a.Key]
	if !ok {
		return nil, fmt.Errorf("no object %s", a.Key)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// storeDecodable stores the attachments that can be decoded, for files
// (like the real sample) whose content is a placeholder.
func storeDecodable(t testing.TB, e *envelope.Envelope, atts []edxml.AttachmentData, s *memStore) {
	t.Helper()
	for _, a := range atts {
		rc, err := a.Open()
		if err != nil {
			continue
		}
		ea, err := s.put(a.Name, a.MediaType, rc)
		rc.Close()
		if err != nil {
			t.Fatalf("attachment %q: %v", a.Name, err)
		}
		ea.Description = a.Description
		e.Attachments = append(e.Attachments, ea)
	}
}

func readAll(t testing.TB, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// js renders v for comparison: times as RFC 3339 with their offset, so that
// two values are equal exactly when every field is.
func js(t testing.TB, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func diffJSON(t testing.TB, what, a, b string) {
	t.Helper()
	if a == b {
		return
	}
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			t.Errorf("%s differ at line %d:\n first: %s\nsecond: %s", what, i+1, x, y)
			return
		}
	}
}

func hasWarning(warnings []string, parts ...string) bool {
next:
	for _, w := range warnings {
		for _, p := range parts {
			if !strings.Contains(w, p) {
				continue next
			}
		}
		return true
	}
	return false
}
