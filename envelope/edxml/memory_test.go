package edxml_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
	"github.com/docaxis/docaxis/envelope/edxml/edxmltest"
)

// TestMemoryLargeAttachment: parsing a file, decoding its attachment and
// writing it out again take a small fraction of the file's size in memory,
// however the producer wrapped its base64 (encoding/xml alone would hold
// the whole text of the content element, and more while its buffer grew:
// 224 MB of heap for a 66 MB file).
func TestMemoryLargeAttachment(t *testing.T) {
	if testing.Short() {
		t.Skip("writes files of 45 MB")
	}
	const size = 32 << 20
	for _, brk := range []string{"", "\r\n", "&#13;&#10;"} {
		t.Run(strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(brk), func(t *testing.T) {
			path, fileSize := edxmltest.WriteLarge(t, t.TempDir(), edxmltest.LargeOptions{From: "000.00.00.G22", To: "000.00.00.H41", Size: size, Seed: 7, LineBreaks: brk})
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var m *edxml.Message
			parse := edxmltest.Peak(func() {
				if m, err = edxml.ParseReaderAt(f, fileSize); err != nil {
					t.Fatal(err)
				}
			})
			var sum string
			open := edxmltest.Peak(func() {
				rc, err := m.Document().Attachments[0].Open()
				if err != nil {
					t.Fatal(err)
				}
				h := sha256.New()
				if n, err := io.Copy(h, rc); err != nil || n != size {
					t.Fatalf("decoded %d bytes, %v", n, err)
				}
				sum = hex.EncodeToString(h.Sum(nil))
			})
			if want := edxmltest.SHA256(size, 7); sum != want {
				t.Fatalf("decoded content has SHA-256 %s, want %s", sum, want)
			}
			e, _, err := m.ToEnvelope(edxml.ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			e.Attachments = []envelope.Attachment{{Name: "big.bin", MediaType: "application/octet-stream", Size: size, SHA256: sum, Key: "k"}}
			write := edxmltest.Peak(func() {
				if err := edxml.Write(io.Discard, e, func(envelope.Attachment) (io.ReadCloser, error) {
					return io.NopCloser(edxmltest.Content(size, 7)), nil
				}); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("file of %d MB: heap peak parse %.1f MB, decode %.1f MB, write %.1f MB", fileSize>>20, mb(parse), mb(open), mb(write))
			for what, peak := range map[string]uint64{"parse": parse, "decode": open, "write": write} {
				if peak > uint64(fileSize)/4 {
					t.Errorf("%s took %.1f MB of heap for a file of %.1f MB, want under a quarter of it", what, mb(peak), mb(uint64(fileSize)))
				}
			}
		})
	}
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

// synthetic is prefix, n times fill, suffix, made up as it is read.
type synthetic struct {
	prefix, suffix string
	fill           byte
	n              int64
}

func (s *synthetic) size() int64 { return int64(len(s.prefix)) + s.n + int64(len(s.suffix)) }

func (s *synthetic) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) && off < s.size() {
		var k int
		switch pre := int64(len(s.prefix)); {
		case off < pre:
			k = copy(p[n:], s.prefix[off:])
		case off < pre+s.n:
			k = int(min(int64(len(p)-n), pre+s.n-off))
			for i := range k {
				p[n+i] = s.fill
			}
		default:
			k = copy(p[n:], s.suffix[off-pre-s.n:])
		}
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestMemoryBombs: text, markup or a signature far over their limits are
// refused once past the limit, without the parser holding them: the input
// is 256 MB, the heap stays within a few MB.
func TestMemoryBombs(t *testing.T) {
	const n = 256 << 20
	header := "<edXMLEnvelope><edXMLHeader><MessageHeader><From><OrganId>000.00.00.G22</OrganId></From>"
	tests := []struct {
		name           string
		prefix, suffix string
		fill           byte
		text           string
	}{
		{"subject", header + "<Subject>", "</Subject>", 'a', "text over 1048576 bytes"},
		{"subject in CDATA", header + "<Subject><![CDATA[", "]]></Subject>", 'a', "text over 1048576 bytes"},
		{"subject of entities", header + "<Subject>", "</Subject>", 0, "text over 1048576 bytes"},
		{"attribute", `<edXMLEnvelope a="`, `">`, 'a', "markup over 1048576 bytes"},
		{"comment", "<edXMLEnvelope><!--", "-->", 'a', "markup over 1048576 bytes"},
		{"declaration", "<!DOCTYPE x [", "]><edXMLEnvelope/>", 'a', "markup over 1048576 bytes"},
		{"signature", "<edXMLEnvelope><edXMLHeader><Signature>", "</Signature>", 'A', "element is over 8388608 bytes"},
		{"text outside the root", "<edXMLEnvelope/>", "", 'x', ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var src io.ReaderAt
			var size int64
			if tc.fill == 0 { // "&amp;" repeated: the text is not its bytes
				r := &repeated{prefix: tc.prefix, unit: "&amp;", n: n / 5, suffix: tc.suffix}
				src, size = r, r.size()
			} else {
				s := &synthetic{prefix: tc.prefix, suffix: tc.suffix, fill: tc.fill, n: n}
				src, size = s, s.size()
			}
			var err error
			peak := edxmltest.Peak(func() { _, err = edxml.ParseReaderAt(src, size, edxml.WithMaxSize(1<<30)) })
			if tc.text == "" {
				// After the root nothing is read.
				if !errors.Is(err, edxml.ErrMissing) {
					t.Fatalf("err %v", err)
				}
			} else if !errors.Is(err, edxml.ErrTooLarge) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("err %v, want ErrTooLarge %q", err, tc.text)
			}
			if peak > 16<<20 {
				t.Errorf("%.1f MB of heap for %d MB of input", mb(peak), size>>20)
			}
		})
	}
}

// repeated is prefix, n times unit, suffix.
type repeated struct {
	prefix, unit, suffix string
	n                    int64
}

func (r *repeated) size() int64 {
	return int64(len(r.prefix)) + r.n*int64(len(r.unit)) + int64(len(r.suffix))
}

func (r *repeated) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	body := r.n * int64(len(r.unit))
	for n < len(p) && off < r.size() {
		var k int
		switch pre := int64(len(r.prefix)); {
		case off < pre:
			k = copy(p[n:], r.prefix[off:])
		case off < pre+body:
			i := (off - pre) % int64(len(r.unit))
			k = copy(p[n:min(len(p), n+int(pre+body-off))], r.unit[i:])
		default:
			k = copy(p[n:], r.suffix[off-pre-body:])
		}
		n += k
		off += int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
