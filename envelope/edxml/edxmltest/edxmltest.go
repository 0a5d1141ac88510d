// Package edxmltest makes large edXML files and measures the memory it
// takes to read and write them, for the tests of the packages that carry
// edXML (envelope/edxml, broker, broker/httpapi, the CLI).
package edxmltest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

// Content returns a reader of size pseudo-random bytes, the same for the
// same seed, and a hash that holds their SHA-256 once the reader is drained.
func Content(size int64, seed uint64) io.Reader {
	return io.LimitReader(rand.NewChaCha8(seedBytes(seed)), size)
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

// SHA256 returns the hex SHA-256 of Content(size, seed).
func SHA256(size int64, seed uint64) string {
	h := sha256.New()
	_, _ = io.Copy(h, Content(size, seed))
	return hex.EncodeToString(h.Sum(nil))
}

// LargeOptions shape the file WriteLarge makes.
type LargeOptions struct {
	From, To string
	// Size is the decoded size of the one attachment.
	Size int64
	Seed uint64
	// LineBreaks, when not "", is written after every 76 base64
	// characters, as producers that wrap lines do ("\r\n", "&#13;&#10;").
	LineBreaks string
}

// WriteLarge writes an edXML document from o.From to o.To with one
// attachment of o.Size pseudo-random bytes into dir and returns its path
// and size.
func WriteLarge(t testing.TB, dir string, o LargeOptions) (string, int64) {
	t.Helper()
	e := envelope.New(o.From, []string{o.To}, "Tệp đính kèm lớn")
	e.Document = &envelope.Document{CodeNumber: "1", CodeNotation: "VP-TEST", PromulgationDate: "2026-01-02"}
	e.Attachments = []envelope.Attachment{{Name: "big.bin", MediaType: "application/octet-stream", Size: o.Size, Key: "big"}}
	path := filepath.Join(dir, "large.edxml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	var out io.Writer = w
	if o.LineBreaks != "" {
		out = &wrapper{w: w, brk: o.LineBreaks}
	}
	err = edxml.Write(out, e, func(envelope.Attachment) (io.ReadCloser, error) {
		return io.NopCloser(Content(o.Size, o.Seed)), nil
	})
	if x, ok := out.(*wrapper); ok && err == nil {
		_, err = w.Write(x.carry)
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, st.Size()
}

// wrapper inserts brk after every 76 characters of the base64 content
// (the text between <edXML:ContentTransferEncoded> and its end tag). The
// writer gives it the content in writes of its own, apart from the tags.
type wrapper struct {
	w     io.Writer
	brk   string
	in    bool
	col   int
	carry []byte // the end of the last write, which may hold part of the tag
}

const openTag = "<edXML:ContentTransferEncoded>"

func (x *wrapper) Write(p []byte) (int, error) {
	n := len(p)
	if !x.in && len(x.carry) > 0 {
		p = append(x.carry, p...)
		x.carry = nil
	}
	for len(p) > 0 {
		if !x.in {
			i := bytes.Index(p, []byte(openTag))
			if i < 0 {
				keep := min(len(p), len(openTag)-1)
				x.carry = append([]byte(nil), p[len(p)-keep:]...)
				_, err := x.w.Write(p[:len(p)-keep])
				return n, err
			}
			i += len(openTag)
			if _, err := x.w.Write(p[:i]); err != nil {
				return 0, err
			}
			p, x.in, x.col = p[i:], true, 0
			continue
		}
		end := bytes.IndexByte(p, '<')
		text := p
		if end >= 0 {
			text = p[:end]
		}
		for len(text) > 0 {
			if x.col == 76 {
				if _, err := io.WriteString(x.w, x.brk); err != nil {
					return 0, err
				}
				x.col = 0
			}
			k := min(76-x.col, len(text))
			if _, err := x.w.Write(text[:k]); err != nil {
				return 0, err
			}
			x.col += k
			text = text[k:]
		}
		if end < 0 {
			return n, nil
		}
		p, x.in = p[end:], false
	}
	return n, nil
}

// Peak samples the Go heap (live and not yet collected objects) while fn
// runs and returns its highest value above the heap in use when fn
// started, after a collection. It measures memory, not time: the samples
// are taken every millisecond, and a buffer as large as the ones it is
// meant to catch lives far longer than that.
func Peak(fn func()) (peak uint64) {
	runtime.GC()
	base := heap()
	var (
		mu   sync.Mutex
		high = base
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			h := heap()
			mu.Lock()
			high = max(high, h)
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(done)
	wg.Wait()
	if h := heap(); h > high {
		high = h
	}
	return high - base
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

func heap() uint64 {
	s := make([]metrics.Sample, 1)
	copy(s, heapSample)
	metrics.Read(s)
	return s[0].Value.Uint64()
}
