package edxml

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// readAllText reads doc as the parser does (text with textReader, markup
// with the decoder) and returns the text directly inside the root.
func readAllText(doc []byte, bufSize int) (string, error) {
	in := bufio.NewReaderSize(bytes.NewReader(doc), bufSize)
	l := newTextReader(in)
	tags := &tagReader{r: in}
	d := xml.NewDecoder(tags)
	d.Strict, d.Entity = true, xml.HTMLEntity
	var b strings.Builder
	depth := 0
	needClose := false
	for {
		for !needClose {
			t, err := l.next()
			if err == errMarkup || err == io.EOF {
				break
			}
			if err != nil {
				return "", err
			}
			if depth == 1 {
				b.Write(t)
			}
		}
		tags.budget = maxMarkup
		tok, err := d.Token()
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
		needClose = false
		switch tok.(type) {
		case xml.StartElement:
			needClose = tags.selfClosing()
			depth++
		case xml.EndElement:
			depth--
		}
	}
}

// referenceText is the same read by encoding/xml alone.
func referenceText(doc []byte) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict, d.Entity = true, xml.HTMLEntity
	var b strings.Builder
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 1 {
				b.Write(t)
			}
		}
	}
}

// openText reads text as Attachment.Open does: the bytes between the
// content element's tags, comments and processing instructions skipped.
func openText(text []byte, bufSize int) (string, error) {
	b, err := io.ReadAll(&contentText{l: newTextReader(bufio.NewReaderSize(bytes.NewReader(text), bufSize))})
	return string(b), err
}

// checkOpen compares openText with encoding/xml for well-formed text
// without elements, what a checked attachment holds.
func checkOpen(t *testing.T, text []byte, size int, want string, werr error) {
	if werr != nil || elements(text) {
		return
	}
	got, err := openText(text, size)
	if err != nil || got != want {
		t.Errorf("%q (buffer %d): opened as %q, %v; encoding/xml %q", text, size, got, err, want)
	}
}

func elements(text []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(append(append([]byte("<a>"), text...), "</a>"...)))
	d.Strict, d.Entity = true, xml.HTMLEntity
	n := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return n > 1
		}
		switch tok.(type) {
		case xml.StartElement:
			n++
		case xml.Directive: // content holding one is refused at parse
			return true
		}
	}
}

var textCases = []string{
	"plain", "TmfDoHkg&#13;&#10;beG7m2k=", "a\r\nb\rc\r\r\nd\n", "<![CDATA[x]]>y<![CDATA[]]>", "<![CDATA[a\r\nb]]]]>",
	"x<!-- c -->y<?pi z?>w", "]]<!---->>", "]]>", "a]]b>", "&amp;&lt;&gt;&apos;&quot;&nbsp;&eacute;", "&#65;&#x41;&#0000065;",
	"&bogus;", "&#0;", "&#x110000;", "&amp", "&#x;", "\x00", "\x7f\u0085", "\xff", "\xe1\xbb", "\ufffe", "ệ\U0001F600",
	"<b>in</b>out<c/>", "x<b/>y<c />z<d a='/'>w</d>v", "<![CDATA[unclosed", "<!-- -- -->", "<!-x-->", "\r", strings.Repeat("ễ", 40) + "]]", "a\rb]]>",
}

// TestTextReader: the parser's text reading agrees with encoding/xml on
// what the text is and on what is malformed, whatever the buffer size.
func TestTextReader(t *testing.T) {
	for _, c := range textCases {
		doc := []byte("<a>" + c + "</a>")
		want, werr := referenceText(doc)
		for _, size := range []int{16, 17, 19, 64, 4096} {
			got, err := readAllText(doc, size)
			if (err == nil) != (werr == nil) || got != want {
				t.Errorf("%q (buffer %d): got %q, %v; encoding/xml %q, %v", c, size, got, err, want, werr)
			}
			checkOpen(t, []byte(c), size, want, werr)
		}
	}
}

// FuzzTextReader: the same for any text.
func FuzzTextReader(f *testing.F) {
	for _, c := range textCases {
		f.Add([]byte(c), uint8(0))
	}
	f.Fuzz(func(t *testing.T, text []byte, size uint8) {
		doc := append(append([]byte("<a>"), text...), "</a>"...)
		want, werr := referenceText(doc)
		got, err := readAllText(doc, 16+int(size))
		if (err == nil) != (werr == nil) || got != want {
			t.Fatalf("%q: got %q, %v; encoding/xml %q, %v", text, got, err, want, werr)
		}
		checkOpen(t, text, 16+int(size), want, werr)
	})
}
