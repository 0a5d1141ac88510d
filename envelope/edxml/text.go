package edxml

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// encoding/xml returns the text between two tags as one token, read whole
// into memory: an attachment's 100 MB of base64 would be 100 MB of heap
// (and more while its buffer grows) before any limit could look at it.
// So the parser lets the decoder read markup only (tags, comments,
// declarations, each bounded by tagReader) and reads text itself, with
// textReader, in pieces of at most one buffer, applying the rules of
// encoding/xml's strict mode: entities, CDATA sections, line ends, legal
// characters.

// errMarkup: the next byte is a '<' that starts markup other than a CDATA
// section; it is left unread, for the decoder.
var errMarkup = errors.New("markup")

// textError is a syntax error in text.
type textError struct{ msg string }

func (e *textError) Error() string { return e.msg }

// textReader reads character data from r. It counts the bytes it consumes
// and the newlines among them, so that the parser can tell offsets and
// lines in spite of reading past the decoder.
type textReader struct {
	r       *bufio.Reader
	n       int64 // bytes consumed
	line    int   // newlines consumed
	special int   // entities and CDATA sections met: the text is not its bytes
	inCDATA bool
	// b0, b1 are the last two bytes of text consumed, to find "]]>".
	b0, b1 byte
	out    [2 * utf8.UTFMax]byte // a decoded reference
}

func newTextReader(r *bufio.Reader) *textReader { return &textReader{r: r} }

func (l *textReader) fail(format string, args ...any) error {
	return &textError{msg: fmt.Sprintf(format, args...)}
}

func (l *textReader) discard(n int) {
	l.r.Discard(n) // the bytes were peeked: Discard cannot fail
	l.n += int64(n)
}

// next returns the next piece of decoded text, valid until the next call;
// errMarkup before markup, io.EOF at the end of the input.
func (l *textReader) next() ([]byte, error) {
	for {
		if l.inCDATA {
			return l.cdata()
		}
		p, err := l.r.Peek(1)
		if len(p) == 0 {
			if err == nil {
				err = io.ErrNoProgress
			}
			return nil, err
		}
		switch p[0] {
		case '<':
			if p, _ := l.r.Peek(9); string(p) == "<![CDATA[" {
				l.discard(9)
				l.inCDATA, l.special = true, l.special+1
				continue
			}
			l.b0, l.b1 = 0, 0 // the decoder reads the markup: "]]" before it ends nothing
			return nil, errMarkup
		case '&':
			return l.reference()
		}
		return l.chars(false, -1)
	}
}

// chars returns plain text up to the next byte that needs a decision:
// markup or a reference (outside CDATA), a carriage return, a character
// split by the buffer's end, or limit (>= 0: the end of a CDATA section).
func (l *textReader) chars(cdata bool, limit int) ([]byte, error) {
	buf, _ := l.r.Peek(l.r.Buffered())
	if limit >= 0 {
		buf = buf[:limit]
	}
	i := 0
	for i < len(buf) {
		b := buf[i]
		if b >= 0x20 && b < utf8.RuneSelf {
			switch {
			case (b == '<' || b == '&') && !cdata:
				return l.take(buf, i)
			case b == '>' && !cdata && l.closesCDATA(buf, i):
				return nil, l.fail("unescaped ]]> not in CDATA section")
			}
			i++
			continue
		}
		switch b {
		case '\n':
			l.line++
			i++
			continue
		case '\t':
			i++
			continue
		case '\r':
			if i > 0 {
				return l.take(buf, i)
			}
			return l.carriageReturn()
		}
		if b < 0x20 {
			return nil, l.fail("illegal character code %U", rune(b))
		}
		if !utf8.FullRune(buf[i:]) {
			if i > 0 {
				return l.take(buf, i)
			}
			// A character across the buffer's end (or the piece's): read
			// it alone, made whole.
			p, _ := l.r.Peek(utf8.UTFMax)
			r, size := utf8.DecodeRune(p)
			if r == utf8.RuneError && size <= 1 {
				return nil, l.fail("invalid UTF-8")
			}
			if !legal(r) {
				return nil, l.fail("illegal character code %U", r)
			}
			return l.take(p, size)
		}
		r, size := utf8.DecodeRune(buf[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, l.fail("invalid UTF-8")
		}
		if !legal(r) {
			return nil, l.fail("illegal character code %U", r)
		}
		i += size
	}
	return l.take(buf, i)
}

// closesCDATA reports whether buf[i] == '>' ends a "]]>".
func (l *textReader) closesCDATA(buf []byte, i int) bool {
	var b0, b1 byte
	switch i {
	case 0:
		b0, b1 = l.b0, l.b1
	case 1:
		b0, b1 = l.b1, buf[0]
	default:
		b0, b1 = buf[i-2], buf[i-1]
	}
	return b0 == ']' && b1 == ']'
}

// take consumes buf[:n] and returns it.
func (l *textReader) take(buf []byte, n int) ([]byte, error) {
	switch {
	case n >= 2:
		l.b0, l.b1 = buf[n-2], buf[n-1]
	case n == 1:
		l.b0, l.b1 = l.b1, buf[0]
	}
	l.discard(n)
	return buf[:n], nil
}

var newline = []byte{'\n'}

// carriageReturn reads "\r\n" or a lone "\r" as "\n", as XML wants.
func (l *textReader) carriageReturn() ([]byte, error) {
	if p, _ := l.r.Peek(2); len(p) == 2 && p[1] == '\n' {
		l.discard(2)
		l.line++
	} else {
		l.discard(1)
	}
	l.b0, l.b1 = l.b1, '\n'
	return newline, nil
}

// cdata returns the next piece of a CDATA section.
func (l *textReader) cdata() ([]byte, error) {
	buf, err := l.r.Peek(3)
	if len(buf) < 3 {
		if err == io.EOF || err == nil {
			return nil, l.fail("unexpected EOF in CDATA section")
		}
		return nil, err
	}
	buf, _ = l.r.Peek(l.r.Buffered())
	end := bytes.Index(buf, []byte("]]>"))
	switch end {
	case 0:
		l.discard(3)
		l.inCDATA = false
		l.b0, l.b1 = 0, 0
		return nil, nil
	case -1:
		end = len(buf) - 2 // "]]" may be the start of the end
	}
	return l.chars(true, end)
}

// maxReference bounds "&name;" and "&#...;": the longest HTML entity name
// has 8 letters, a number may have leading zeros.
const maxReference = 256

// reference reads a character or entity reference.
func (l *textReader) reference() ([]byte, error) {
	p, _ := l.r.Peek(maxReference)
	j := 1
	for j < len(p) && (isNameByte(p[j]) || p[j] == '#' || p[j] >= utf8.RuneSelf) {
		j++
	}
	if j == len(p) || p[j] != ';' {
		return nil, l.fail("invalid character entity %s (no semicolon)", p[:j])
	}
	ref := string(p[1:j])
	var text string
	ok := false
	if len(ref) > 1 && ref[0] == '#' {
		num, base := ref[1:], 10
		if len(num) > 0 && num[0] == 'x' {
			num, base = num[1:], 16
		}
		if n, err := strconv.ParseUint(num, base, 32); err == nil && n <= utf8.MaxRune && num != "" && num[0] != '+' && num[0] != '-' {
			text, ok = string(rune(n)), true
		}
	} else if r, found := predefined[ref]; found {
		text, ok = string(r), true
	} else {
		text, ok = xml.HTMLEntity[ref]
	}
	if !ok {
		return nil, l.fail("invalid character entity &%s;", ref)
	}
	for _, r := range text {
		if !legal(r) {
			return nil, l.fail("illegal character code %U", r)
		}
	}
	l.discard(j + 1)
	l.special++
	l.b0, l.b1 = 0, 0
	return append(l.out[:0], text...), nil
}

var predefined = map[string]rune{"lt": '<', "gt": '>', "amp": '&', "apos": '\'', "quot": '"'}

func isNameByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '_' || c == ':' || c == '.' || c == '-'
}

// legal reports the characters XML 1.0 allows.
func legal(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// skipMarkup skips a comment or processing instruction at the reader's
// position (re-reading content already checked by the decoder).
func (l *textReader) skipMarkup() error {
	p, _ := l.r.Peek(4)
	// The opener is skipped whole: in "<!-->-->" the comment's end is the
	// second "-->", not the dashes of "<!--".
	var end string
	var open int
	switch {
	case bytes.HasPrefix(p, []byte("<!--")):
		end, open = "-->", 4
	case bytes.HasPrefix(p, []byte("<?")):
		end, open = "?>", 2
	default:
		return l.fail("markup inside attachment content")
	}
	l.discard(open)
	for {
		buf, err := l.r.Peek(len(end))
		if len(buf) < len(end) {
			if err == nil || err == io.EOF {
				err = l.fail("unexpected EOF")
			}
			return err
		}
		buf, _ = l.r.Peek(l.r.Buffered())
		if i := bytes.Index(buf, []byte(end)); i >= 0 {
			l.line += bytes.Count(buf[:i], newline)
			l.discard(i + len(end))
			return nil
		}
		n := len(buf) - len(end) + 1
		l.line += bytes.Count(buf[:n], newline)
		l.discard(n)
	}
}

// errTagTooLarge: one piece of markup over the tagReader's budget.
var errTagTooLarge = errors.New("markup too large")

// tagReader is what the decoder reads: the same buffered input, with a
// budget per token, so that no tag, comment or declaration can make the
// decoder hold more than that.
type tagReader struct {
	r      *bufio.Reader
	budget int
	b0, b1 byte // the last two bytes read: "/>" ends a self-closing tag
}

func (t *tagReader) ReadByte() (byte, error) {
	if t.budget <= 0 {
		return 0, errTagTooLarge
	}
	t.budget--
	b, err := t.r.ReadByte()
	if err == nil {
		t.b0, t.b1 = t.b1, b
	}
	return b, err
}

// selfClosing reports whether the last tag read ended with "/>".
func (t *tagReader) selfClosing() bool { return t.b0 == '/' && t.b1 == '>' }

// Read is there for xml.Decoder's CharsetReader, which wants an io.Reader.
func (t *tagReader) Read(p []byte) (int, error) {
	if t.budget <= 0 {
		return 0, errTagTooLarge
	}
	p = p[:min(len(p), t.budget)]
	n, err := t.r.Read(p)
	t.budget -= n
	return n, err
}

// contentText is the text of an attachment's ContentTransferEncoded
// element, read from the input when the attachment is opened.
type contentText struct {
	l       *textReader
	pending []byte
}

func (c *contentText) Read(p []byte) (int, error) {
	for len(c.pending) == 0 {
		chunk, err := c.l.next()
		if err == errMarkup {
			err = c.l.skipMarkup()
		}
		if err != nil {
			return 0, err
		}
		c.pending = chunk
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}
