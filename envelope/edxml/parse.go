package edxml

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
)

// Limits. Attachment content is bounded only by the input size; every
// other element's text by the text limit, one piece of markup (a tag with
// its attributes, a comment, a declaration) by maxMarkup, the signature by
// maxRaw. Each is refused as soon as it is over, not once read whole.
const (
	DefaultMaxSize     int64 = 512 << 20 // whole input
	DefaultMaxText           = 1 << 20   // text of one element other than attachment content
	DefaultMaxElements       = 100_000
	MaxDepth                 = 64
	maxName                  = 256 // element name, bytes
	maxWarnings              = 1000
	maxRaw                   = 8 << 20 // a Signature element kept verbatim
	junkWindow               = 64 << 10
)

// Option adjusts Parse.
type Option func(*options)

type options struct {
	maxSize     int64
	maxText     int
	maxElements int
}

// WithMaxSize refuses input over n bytes (default DefaultMaxSize).
func WithMaxSize(n int64) Option { return func(o *options) { o.maxSize = n } }

// WithMaxText bounds the text of one element, attachment content aside
// (default DefaultMaxText).
func WithMaxText(n int) Option { return func(o *options) { o.maxText = n } }

// WithMaxElements bounds the number of elements (default DefaultMaxElements).
func WithMaxElements(n int) Option { return func(o *options) { o.maxElements = n } }

// Message is one parsed edXML file: a document or a status message.
type Message struct {
	// Warnings name what was tolerated: stray bytes before the XML, codes
	// not in the standard agency-code format, unknown or duplicate
	// elements, non-standard dates, undecodable attachments. Each starts
	// with the element path and line where it applies.
	Warnings []string

	doc    *Document
	status *Status
	src    io.ReaderAt
	size   int64
}

// Document returns the document message, or nil for a status message.
func (m *Message) Document() *Document { return m.doc }

// Status returns the status message, or nil for a document message.
func (m *Message) Status() *Status { return m.status }

// IsStatus reports whether m is a status message.
func (m *Message) IsStatus() bool { return m.status != nil }

// Parse reads an edXML document or status message. It holds the input in
// memory (at most the size limit) because attachments are decoded from it
// lazily; use ParseReaderAt to read from a file instead.
func Parse(r io.Reader, opts ...Option) (*Message, error) {
	o := newOptions(opts)
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(r, o.maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("edxml: reading input: %w", err)
	}
	if n > o.maxSize {
		return nil, &ParseError{Err: fmt.Errorf("%w: input is over %d bytes", ErrTooLarge, o.maxSize)}
	}
	b := buf.Bytes()
	return parse(bytes.NewReader(b), int64(len(b)), o)
}

// ParseReaderAt reads an edXML message of size bytes from r. Attachment
// content is not copied: Attachment.Open streams it from r, which must stay
// readable and unchanged while attachments are read.
func ParseReaderAt(r io.ReaderAt, size int64, opts ...Option) (*Message, error) {
	o := newOptions(opts)
	if size > o.maxSize {
		return nil, &ParseError{Err: fmt.Errorf("%w: input is %d bytes, at most %d", ErrTooLarge, size, o.maxSize)}
	}
	return parse(r, size, o)
}

func newOptions(opts []Option) options {
	o := options{maxSize: DefaultMaxSize, maxText: DefaultMaxText, maxElements: DefaultMaxElements}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// node is one element of the parsed tree. Attachment content and the XML
// signature are not kept as text: content is located in the input and
// checked, the signature is copied verbatim.
type node struct {
	name    string // local name as written
	space   string
	attrs   []xml.Attr
	text    []byte
	kids    []*node
	line    int // in the whole input, skipped bytes included
	parent  *node
	suffix  string // [n] of the n-th repeated sibling
	counts  map[string]int
	raw     []byte
	content *content
}

// path is the element path from the root. Built on demand: storing it in
// every node would cost depth x name length per element.
func (n *node) path() string {
	if n == nil {
		return ""
	}
	if n.parent == nil {
		return n.name + n.suffix
	}
	return n.parent.path() + "/" + n.name + n.suffix
}

// content locates the text of a ContentTransferEncoded element in the
// input. When that text is plain (no markup, no entity) it is decoded
// straight from the input; otherwise the element is re-read with an XML
// decoder when opened.
type content struct {
	start, end         int64 // text, absolute offsets
	elemStart, elemEnd int64 // whole element
	plain              bool
	enc                *base64.Encoding
	size               int64
	err                *ParseError
}

type parser struct {
	o        options
	src      io.ReaderAt
	size     int64
	base     int64 // offset in src where the decoder starts
	baseLine int   // lines skipped before base
	d        *xml.Decoder
	tags     *tagReader  // what the decoder reads: markup only
	text     *textReader // text between markup, read without the decoder
	elements int
	stack    []*node
	warnings []warning
	charset  error // the refusal of charsetReader, unwrapped from the decoder's
	// needClose: the last token was a self-closing tag's start; its end
	// comes next, before any text.
	needClose bool
}

// maxMarkup bounds one tag, comment, processing instruction or declaration.
const maxMarkup = 1 << 20

type warning struct {
	line int
	text string
}

// warnAt records a warning; line 0 for one without a place.
func (p *parser) warnAt(line int, path, format string, args ...any) {
	if len(p.warnings) >= maxWarnings {
		if len(p.warnings) == maxWarnings {
			p.warnings = append(p.warnings, warning{1 << 30, "more warnings left out"})
		}
		return
	}
	text := fmt.Sprintf(format, args...)
	if path != "" {
		text = path + ": " + text
	}
	if line > 0 {
		text = fmt.Sprintf("line %d: %s", line, text)
	}
	p.warnings = append(p.warnings, warning{line, text})
}

func parse(src io.ReaderAt, size int64, o options) (*Message, error) {
	p := &parser{o: o, src: src, size: size}
	if err := p.skipJunk(); err != nil {
		return nil, err
	}
	in := bufio.NewReaderSize(io.NewSectionReader(src, p.base, size-p.base), 64<<10)
	p.text = newTextReader(in)
	p.tags = &tagReader{r: in}
	p.d = xml.NewDecoder(p.tags) // an io.ByteReader: the decoder reads no further than it must
	p.d.Strict = true
	p.d.Entity = xml.HTMLEntity // &nbsp; and friends from HTML-minded producers
	p.d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		r, err := charsetReader(label, r)
		p.charset = err
		return r, err
	}
	root, err := p.build()
	if err != nil {
		return nil, err
	}
	m := &Message{src: src, size: size}
	mp := &mapper{p: p}
	if err := mp.message(root, m); err != nil {
		return nil, err
	}
	// Mapping visits the tree in its own order; files are read top down.
	sort.SliceStable(p.warnings, func(i, j int) bool { return p.warnings[i].line < p.warnings[j].line })
	for _, w := range p.warnings {
		m.Warnings = append(m.Warnings, w.text)
	}
	return m, nil
}

// skipJunk finds the first '<' that can start XML (a declaration, comment,
// doctype or element) and starts decoding there, so that a BOM or bytes
// some gateway put in front of the file do not make it unreadable.
func (p *parser) skipJunk() error {
	n := int64(junkWindow)
	if n > p.size {
		n = p.size
	}
	buf := make([]byte, n)
	if _, err := p.src.ReadAt(buf, 0); err != nil && err != io.EOF {
		return fmt.Errorf("edxml: reading input: %w", err)
	}
	for i := 0; i+1 < len(buf); i++ {
		if buf[i] != '<' {
			continue
		}
		if c := buf[i+1]; c == '?' || c == '!' || c == '_' || c >= 0x80 || (c|0x20 >= 'a' && c|0x20 <= 'z') {
			p.base = int64(i)
			p.baseLine = bytes.Count(buf[:i], []byte{'\n'})
			prefix := bytes.TrimPrefix(buf[:i], []byte("\xef\xbb\xbf"))
			if len(bytes.TrimSpace(prefix)) > 0 {
				p.warnAt(1, "", "%d stray bytes before the XML skipped (%s)", i, quotePrefix(buf[:i]))
			}
			return nil
		}
	}
	if p.size == 0 {
		return &ParseError{Err: fmt.Errorf("%w: empty input", ErrNotEdXML)}
	}
	return &ParseError{Line: 1, Err: fmt.Errorf("%w: no XML element in the first %d bytes", ErrNotEdXML, len(buf))}
}

func quotePrefix(b []byte) string {
	if len(b) > 16 {
		return fmt.Sprintf("%q...", b[:16])
	}
	return fmt.Sprintf("%q", b)
}

func charsetReader(label string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "utf8", "utf-8", "us-ascii", "ascii":
		return r, nil
	}
	return nil, fmt.Errorf("%w %q: only UTF-8 is supported", ErrCharset, label)
}

// line is the current line in the whole input: the lines skipped before
// the XML, those the decoder read and those read as text.
func (p *parser) line() int {
	l, _ := p.d.InputPos()
	return l + p.baseLine + p.text.line
}

// offset is the current offset from base: what the decoder read and what
// was read as text.
func (p *parser) offset() int64 { return p.d.InputOffset() + p.text.n }

// token reads the next piece of markup with the decoder. The text before
// it must have been read (readText).
func (p *parser) token() (xml.Token, error) {
	p.tags.budget = maxMarkup
	tok, err := p.d.Token()
	if errors.Is(err, errTagTooLarge) {
		return nil, &ParseError{Path: p.openPath(), Line: p.line(), Err: fmt.Errorf("%w: markup over %d bytes", ErrTooLarge, maxMarkup)}
	}
	// The decoder gives <a/> as a start and an end: no text between.
	_, start := tok.(xml.StartElement)
	p.needClose = start && p.tags.selfClosing()
	return tok, err
}

// readText reads the text up to the next markup or the end of the input,
// handing it to fn in pieces with the line each starts on.
func (p *parser) readText(fn func(text []byte, line int) error) error {
	if p.needClose {
		return nil // the end of <a/> comes first
	}
	for {
		line := p.line()
		t, err := p.text.next()
		switch {
		case err == errMarkup || err == io.EOF:
			return nil // the decoder reads what comes, or says what is missing
		case err != nil:
			var te *textError
			if errors.As(err, &te) {
				return &ParseError{Path: p.openPath(), Line: p.line(), Err: fmt.Errorf("%w: %s", ErrSyntax, te.msg)}
			}
			return fmt.Errorf("edxml: reading input: %w", err)
		}
		if len(t) > 0 {
			if err := fn(t, line); err != nil {
				return err
			}
		}
	}
}

func (p *parser) openPath() string {
	if len(p.stack) == 0 {
		return ""
	}
	return p.stack[len(p.stack)-1].path()
}

// fail turns a decoder error into a *ParseError at the innermost open
// element.
func (p *parser) fail(err error) error {
	var se *xml.SyntaxError
	switch {
	case errors.As(err, &se):
		return &ParseError{Path: p.openPath(), Line: se.Line + p.baseLine + p.text.line, Err: fmt.Errorf("%w: %s", ErrSyntax, se.Msg)}
	case p.charset != nil:
		return &ParseError{Line: p.line(), Err: p.charset}
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return &ParseError{Path: p.openPath(), Line: p.line(), Err: fmt.Errorf("%w: unexpected end of input", ErrSyntax)}
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		return err
	}
	if strings.HasPrefix(err.Error(), "xml: ") {
		return &ParseError{Path: p.openPath(), Line: p.line(), Err: fmt.Errorf("%w: %s", ErrSyntax, strings.TrimPrefix(err.Error(), "xml: "))}
	}
	return fmt.Errorf("edxml: reading input: %w", err)
}

func (p *parser) open(t xml.StartElement, line int) (*node, error) {
	p.elements++
	if p.elements > p.o.maxElements {
		return nil, &ParseError{Path: p.openPath(), Line: line, Err: fmt.Errorf("%w: more than %d elements", ErrTooLarge, p.o.maxElements)}
	}
	if len(p.stack) >= MaxDepth {
		return nil, &ParseError{Path: p.openPath(), Line: line, Err: fmt.Errorf("%w: elements nested deeper than %d", ErrTooLarge, MaxDepth)}
	}
	if len(t.Name.Local) > maxName {
		return nil, &ParseError{Path: p.openPath(), Line: line, Err: fmt.Errorf("%w: element name of %d bytes", ErrTooLarge, len(t.Name.Local))}
	}
	n := &node{name: t.Name.Local, space: t.Name.Space, attrs: t.Attr, line: line}
	if len(p.stack) == 0 {
		return n, nil
	}
	parent := p.stack[len(p.stack)-1]
	if parent.counts == nil {
		parent.counts = make(map[string]int)
	}
	parent.counts[n.name]++
	n.parent = parent
	if c := parent.counts[n.name]; c > 1 {
		n.suffix = fmt.Sprintf("[%d]", c)
	}
	parent.kids = append(parent.kids, n)
	// Indentation between children is not text: drop it so that it counts
	// against no limit.
	if len(parent.kids) == 1 && len(bytes.TrimSpace(parent.text)) == 0 {
		parent.text = parent.text[:0]
	}
	return n, nil
}

// build reads the root element into a tree and stops at its end: whatever
// follows the root is not read.
func (p *parser) build() (*node, error) {
	for {
		outside := false
		if err := p.readText(func(t []byte, line int) error {
			if len(p.stack) == 0 {
				if !outside && len(bytes.TrimSpace(bytes.TrimPrefix(t, []byte("\ufeff")))) > 0 {
					p.warnAt(line, "", "text outside the root element ignored")
					outside = true
				}
				return nil
			}
			top := p.stack[len(p.stack)-1]
			if len(top.kids) > 0 && len(bytes.TrimSpace(t)) == 0 {
				return nil
			}
			if len(top.text)+len(t) > p.o.maxText {
				return &ParseError{Path: top.path(), Line: top.line, Err: fmt.Errorf("%w: text over %d bytes", ErrTooLarge, p.o.maxText)}
			}
			top.text = append(top.text, t...)
			return nil
		}); err != nil {
			return nil, err
		}
		before := p.offset()
		line := p.line()
		tok, err := p.token()
		if err != nil {
			if err == io.EOF && len(p.stack) == 0 {
				return nil, &ParseError{Line: line, Err: fmt.Errorf("%w: no root element", ErrNotEdXML)}
			}
			return nil, p.fail(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n, err := p.open(t, line)
			if err != nil {
				return nil, err
			}
			if len(p.stack) == 0 {
				if k := key(n.name); k != "edxml" && k != "edxmlenvelope" {
					return nil, &ParseError{Path: n.path(), Line: line, Err: fmt.Errorf("%w: root element is <%s>, want <edXML> or <edXMLEnvelope>", ErrNotEdXML, n.name)}
				}
				if n.space != Namespace {
					ns := "no namespace"
					if n.space != "" {
						ns = fmt.Sprintf("namespace %q", n.space)
					}
					p.warnAt(line, n.path(), "%s, want %q", ns, Namespace)
				}
			}
			switch key(n.name) {
			case "signature":
				if err := p.readRaw(n, before); err != nil {
					return nil, err
				}
				continue
			case "contenttransferencoded":
				if err := p.readContent(n, before); err != nil {
					return nil, err
				}
				continue
			}
			p.stack = append(p.stack, n)
		case xml.EndElement:
			n := p.stack[len(p.stack)-1]
			p.stack = p.stack[:len(p.stack)-1]
			if len(p.stack) == 0 {
				return n, nil
			}
		}
		// Comments, processing instructions and directives carry nothing.
	}
}

// skip reads up to the end of the element just opened, handing its text
// and markup to the callbacks, and returns the offset after it.
func (p *parser) skip(n *node, text func(t []byte, line int) error, markup func(tok xml.Token, before int64, line int) error) (int64, error) {
	p.stack = append(p.stack, n)
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()
	depth := 1
	for {
		if err := p.readText(text); err != nil {
			return 0, err
		}
		before := p.offset()
		line := p.line()
		tok, err := p.token()
		if err != nil {
			return 0, p.fail(err)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
			if depth+len(p.stack) > MaxDepth {
				return 0, &ParseError{Path: n.path(), Line: line, Err: fmt.Errorf("%w: elements nested deeper than %d", ErrTooLarge, MaxDepth)}
			}
		case xml.EndElement:
			depth--
		}
		if err := markup(tok, before, line); err != nil {
			return 0, err
		}
		if depth == 0 {
			return p.offset(), nil
		}
	}
}

// readRaw keeps an element (the XML signature) byte for byte: it signs the
// original bytes, so re-serialising it would be pointless.
func (p *parser) readRaw(n *node, start int64) error {
	bound := func() error {
		if p.offset()-start > maxRaw {
			return &ParseError{Path: n.path(), Line: n.line, Err: fmt.Errorf("%w: element is over %d bytes", ErrTooLarge, maxRaw)}
		}
		return nil
	}
	end, err := p.skip(n, func([]byte, int) error { return bound() }, func(xml.Token, int64, int) error { return bound() })
	if err != nil {
		return err
	}
	n.raw = make([]byte, end-start)
	if _, err := p.src.ReadAt(n.raw, p.base+start); err != nil && err != io.EOF {
		return fmt.Errorf("edxml: reading input: %w", err)
	}
	return nil
}

// readContent checks attachment content as it streams by and records where
// it is, so that nothing of it is kept in memory.
func (p *parser) readContent(n *node, start int64) error {
	c := &content{elemStart: p.base + start, start: p.base + p.offset()}
	n.content = c
	var check b64check
	textEnd := int64(-1)
	special := p.text.special
	plain := true
	end, err := p.skip(n, func(t []byte, line int) error {
		check.write(t, line)
		return nil
	}, func(tok xml.Token, before int64, line int) error {
		switch t := tok.(type) {
		case xml.EndElement:
			textEnd = before // the last one read is the element's own
		case xml.StartElement:
			if check.err == nil {
				check.fail(line, fmt.Errorf("%w: element <%s> inside the content", ErrBadBase64, t.Name.Local))
			}
			plain = false
		case xml.Directive:
			if check.err == nil {
				check.fail(line, fmt.Errorf("%w: declaration <!%s> inside the content", ErrBadBase64, truncate(string(t), 20)))
			}
			plain = false
		default:
			plain = false // a comment or processing instruction
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.end = p.base + textEnd
	c.elemEnd = p.base + end
	c.size, err = check.finish()
	if err != nil {
		line := check.errLine
		if line == 0 {
			line = n.line
		}
		c.err = &ParseError{Path: n.path(), Line: line, Err: err}
		return nil
	}
	c.enc = check.encoding()
	if check.urlSafe {
		p.warnAt(n.line, n.path(), "URL-safe base64 alphabet")
	}
	c.plain = plain && p.text.special == special
	return nil
}

// open returns the decoded content, read from the input as it is
// consumed.
func (c *content) open(src io.ReaderAt, path string, line int) (io.ReadCloser, error) {
	if c.err != nil {
		return nil, c.err
	}
	var text io.Reader = io.NewSectionReader(src, c.start, c.end-c.start)
	if !c.plain {
		// Entities, CDATA or comments inside: undo them as the parser did.
		text = &contentText{l: newTextReader(bufio.NewReaderSize(text, 32<<10))}
	}
	dec := base64.NewDecoder(c.enc, b64filter{text})
	return io.NopCloser(decodeErrReader{r: dec, path: path, line: line}), nil
}

// serialize writes n back as XML without namespace prefixes, for an
// Extension.
func serialize(n *node) string {
	if n.raw != nil {
		return string(n.raw)
	}
	var b strings.Builder
	var walk func(n *node)
	walk = func(n *node) {
		b.WriteString("<" + n.name)
		for _, a := range n.attrs {
			if a.Name.Space == "xmlns" || a.Name.Local == "xmlns" {
				continue
			}
			b.WriteString(" " + a.Name.Local + `="`)
			escape(&b, a.Value, true)
			b.WriteString(`"`)
		}
		b.WriteString(">")
		if len(n.kids) == 0 {
			escape(&b, strings.TrimSpace(string(n.text)), false)
		}
		for _, k := range n.kids {
			walk(k)
		}
		b.WriteString("</" + n.name + ">")
	}
	walk(n)
	return b.String()
}

// escape writes s as XML text (or attribute value), keeping new lines and
// tabs literal in text and dropping characters XML cannot carry.
func escape(b *strings.Builder, s string, attr bool) {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"' && attr:
			b.WriteString("&quot;")
		case r == '\r':
			b.WriteString("&#xD;")
		case (r == '\n' || r == '\t') && attr:
			fmt.Fprintf(b, "&#x%X;", r)
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r == utf8.RuneError && size == 1, r < 0x20, r == 0xFFFE, r == 0xFFFF:
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
}
