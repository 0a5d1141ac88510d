package pdf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// The scanner walks a PDF from its first byte to its last and collects the
// signature dictionaries it finds, with the file offsets of their /Contents
// strings. It does not follow the cross-reference table: a signature's
// ByteRange names raw file offsets, so a signature dictionary that can be
// checked is always stored uncompressed, and a linear walk finds it even in
// files whose xref is broken. The walk is iterative at the top level,
// recursion is bounded by maxDepth, stored strings and values are bounded
// per object, and nothing is read twice except stream ends, so run time is
// linear in the file size and memory is bounded whatever the input.

const (
	maxDepth       = 64       // nesting of arrays and dictionaries
	maxValues      = 1 << 16  // values kept per indirect object
	maxStringBytes = 16 << 20 // string bytes kept per indirect object
	maxSigBytes    = 64 << 20 // /Contents bytes kept for all signatures
	maxSignatures  = 64       // signature dictionaries judged per file; each may hash the whole file
	windowSize     = 64 << 10 // read-ahead of the source
	maxXrefObjects = 1 << 22  // object numbers digitorus/pdf may be asked to allocate
)

// source reads a ReaderAt byte by byte through a window.
type source struct {
	ra    io.ReaderAt
	size  int64
	buf   []byte
	start int64 // file offset of buf[0]
	pos   int64
	err   error
}

func newSource(ra io.ReaderAt, size int64) *source {
	return &source{ra: ra, size: size, buf: make([]byte, 0, windowSize)}
}

// fill makes the window cover pos; it reports false at the end of input.
func (s *source) fill() bool {
	if s.pos >= s.start && s.pos < s.start+int64(len(s.buf)) {
		return true
	}
	if s.pos >= s.size || s.err != nil {
		return false
	}
	n := min(int64(cap(s.buf)), s.size-s.pos)
	s.buf = s.buf[:n]
	m, err := s.ra.ReadAt(s.buf, s.pos)
	if m < int(n) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		s.err = fmt.Errorf("read at offset %d: %w", s.pos, err)
		s.buf = s.buf[:m]
		if m == 0 {
			return false
		}
	}
	s.start = s.pos
	return true
}

func (s *source) peek() (byte, bool) {
	if !s.fill() {
		return 0, false
	}
	return s.buf[s.pos-s.start], true
}

func (s *source) next() (byte, bool) {
	c, ok := s.peek()
	if ok {
		s.pos++
	}
	return c, ok
}

// hasPrefixAt reports whether the input at off starts with p.
func (s *source) hasPrefixAt(off int64, p string) bool {
	if off < 0 || off+int64(len(p)) > s.size {
		return false
	}
	b := make([]byte, len(p))
	if _, err := s.ra.ReadAt(b, off); err != nil {
		return false
	}
	return string(b) == p
}

// index returns the offset of the first p at or after pos, or -1.
func (s *source) index(p string) int64 {
	for s.fill() {
		w := s.buf[s.pos-s.start:]
		if i := bytes.Index(w, []byte(p)); i >= 0 {
			return s.pos + int64(i)
		}
		if s.start+int64(len(s.buf)) >= s.size {
			return -1
		}
		// Keep an overlap so that a match across windows is found.
		s.pos = max(s.pos+1, s.start+int64(len(s.buf))-int64(len(p))+1)
		s.start, s.buf = 0, s.buf[:0]
	}
	return -1
}

type tokKind uint8

const (
	tEOF tokKind = iota
	tInt
	tReal
	tName
	tString
	tKeyword
	tDictOpen
	tDictClose
	tArrayOpen
	tArrayClose
)

type token struct {
	kind       tokKind
	i          int64
	s          string // name, keyword, or decoded string
	start, end int64  // file offsets of the token
	truncated  bool   // a string longer than the scanner keeps
	hex        bool   // a string written <in hex>
	bad        bool   // a hex string with non-hex characters
}

type lexer struct {
	src      *source
	sawEOF   bool  // a %%EOF marker was seen
	eofEnd   int64 // offset after the last one
	budget   int   // string bytes the current object may still keep
	pushback []token
	scratch  []byte
}

func isSpace(c byte) bool {
	switch c {
	case 0, '\t', '\n', '\f', '\r', ' ':
		return true
	}
	return false
}

func isDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (l *lexer) unread(t token) { l.pushback = append(l.pushback, t) }

// next returns the next token. Bytes that cannot start a token are skipped:
// the scanner resynchronises on garbage instead of giving up.
func (l *lexer) next() token {
	if n := len(l.pushback); n > 0 {
		t := l.pushback[n-1]
		l.pushback = l.pushback[:n-1]
		return t
	}
	s := l.src
	for {
		c, ok := s.next()
		if !ok {
			return token{kind: tEOF, start: s.pos, end: s.pos}
		}
		start := s.pos - 1
		switch {
		case isSpace(c):
			continue
		case c == '%':
			l.comment()
			continue
		case c == '/':
			return token{kind: tName, s: l.regular(true), start: start, end: s.pos}
		case c == '(':
			t := l.literal()
			t.start, t.end = start, s.pos
			return t
		case c == '<':
			if d, ok := s.peek(); ok && d == '<' {
				s.pos++
				return token{kind: tDictOpen, start: start, end: s.pos}
			}
			t := l.hexString()
			t.start, t.end = start, s.pos
			return t
		case c == '>':
			if d, ok := s.peek(); ok && d == '>' {
				s.pos++
				return token{kind: tDictClose, start: start, end: s.pos}
			}
			continue // stray '>'
		case c == '[':
			return token{kind: tArrayOpen, start: start, end: s.pos}
		case c == ']':
			return token{kind: tArrayClose, start: start, end: s.pos}
		case c == ')' || c == '{' || c == '}':
			continue
		default:
			s.pos--
			word := l.regular(false)
			return classify(word, start, s.pos)
		}
	}
}

// comment skips to the end of the line, noting %%EOF markers.
func (l *lexer) comment() {
	s := l.src
	var text [8]byte
	n := 0
	for {
		c, ok := s.peek()
		if !ok || c == '\n' || c == '\r' {
			break
		}
		s.pos++
		if n < len(text) {
			text[n] = c
		}
		n++
	}
	if n <= len(text) && string(bytes.TrimRight(text[:n], " \t\f\x00")) == "%EOF" {
		l.sawEOF, l.eofEnd = true, s.pos
	}
}

// regular reads a run of regular characters; in names it decodes #xx.
func (l *lexer) regular(isName bool) string {
	s := l.src
	l.scratch = l.scratch[:0]
	for {
		c, ok := s.peek()
		if !ok || isSpace(c) || isDelim(c) {
			break
		}
		s.pos++
		if isName && c == '#' {
			if h, ok := s.peek(); ok {
				if hi, ok := unhex(h); ok {
					s.pos++
					if g, ok := s.peek(); ok {
						if lo, ok := unhex(g); ok {
							s.pos++
							c = hi<<4 | lo
						}
					}
				}
			}
		}
		if len(l.scratch) < 256 { // names and keywords are short
			l.scratch = append(l.scratch, c)
		}
	}
	return string(l.scratch)
}

func classify(word string, start, end int64) token {
	if i, err := strconv.ParseInt(word, 10, 64); err == nil {
		return token{kind: tInt, i: i, start: start, end: end}
	}
	if _, err := strconv.ParseFloat(word, 64); err == nil && word != "" && word[0] != 'i' && word[0] != 'I' && word[0] != 'n' && word[0] != 'N' {
		return token{kind: tReal, s: word, start: start, end: end}
	}
	return token{kind: tKeyword, s: word, start: start, end: end}
}

// keep appends c to the string being read while the object's budget lasts.
func (l *lexer) keep(c byte, t *token) {
	if t.truncated {
		return
	}
	if l.budget <= 0 {
		t.truncated = true
		l.scratch = l.scratch[:0]
		return
	}
	l.budget--
	l.scratch = append(l.scratch, c)
}

func (l *lexer) literal() token {
	s := l.src
	t := token{kind: tString}
	l.scratch = l.scratch[:0]
	depth := 1
	for {
		c, ok := s.next()
		if !ok {
			break
		}
		switch c {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				t.s = string(l.scratch)
				return t
			}
		case '\\':
			e, ok := s.next()
			if !ok {
				break
			}
			switch e {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case '\r':
				if d, ok := s.peek(); ok && d == '\n' {
					s.pos++
				}
				continue
			case '\n':
				continue
			default:
				if e >= '0' && e <= '7' {
					v := e - '0'
					for range 2 {
						d, ok := s.peek()
						if !ok || d < '0' || d > '7' {
							break
						}
						s.pos++
						v = v<<3 | (d - '0')
					}
					c = v
				} else {
					c = e
				}
			}
		}
		l.keep(c, &t)
	}
	t.s = string(l.scratch)
	return t
}

func (l *lexer) hexString() token {
	s := l.src
	t := token{kind: tString, hex: true}
	l.scratch = l.scratch[:0]
	var hi byte
	half := false
	for {
		c, ok := s.next()
		if !ok || c == '>' {
			break
		}
		v, ok := unhex(c)
		if !ok {
			if !isSpace(c) {
				t.bad = true
			}
			continue
		}
		if half {
			l.keep(hi<<4|v, &t)
		} else {
			hi = v
		}
		half = !half
	}
	if half {
		l.keep(hi<<4, &t)
	}
	t.s = string(l.scratch)
	return t
}

// value is a parsed PDF object.
type value struct {
	kind       tokKind // tInt, tReal, tName, tString, tKeyword (true, false, null), tArrayOpen, tDictOpen, or tRef
	i          int64
	s          string
	start, end int64 // file offsets, for strings
	truncated  bool
	hex, bad   bool
	arr        []value
	dict       map[string]value
}

const tRef tokKind = 100

func (v value) key(k string) (value, bool) {
	if v.kind != tDictOpen {
		return value{}, false
	}
	x, ok := v.dict[k]
	return x, ok
}

func (v value) name(k string) string {
	x, _ := v.key(k)
	if x.kind != tName {
		return ""
	}
	return x.s
}

// parser builds values from tokens with bounded depth and size.
type parser struct {
	lx     *lexer
	values int
}

var errTooDeep = errors.New("objects nested too deeply")

func (p *parser) parse(depth int) (value, error) {
	t := p.lx.next()
	switch t.kind {
	case tEOF:
		return value{}, io.ErrUnexpectedEOF
	case tDictOpen:
		if depth >= maxDepth {
			return value{}, errTooDeep
		}
		v := value{kind: tDictOpen, dict: map[string]value{}, start: t.start}
		for {
			k := p.lx.next()
			switch k.kind {
			case tDictClose:
				v.end = k.end
				return v, nil
			case tName:
				x, err := p.parse(depth + 1)
				if err != nil {
					return v, err
				}
				p.values++
				if _, dup := v.dict[k.s]; !dup && p.values < maxValues {
					v.dict[k.s] = x
				}
			case tEOF:
				return v, io.ErrUnexpectedEOF
			default:
				// A keyword such as endobj means the dictionary was
				// never closed; stop here and let the caller resync.
				p.lx.unread(k)
				return v, fmt.Errorf("unterminated dictionary at offset %d", v.start)
			}
		}
	case tArrayOpen:
		if depth >= maxDepth {
			return value{}, errTooDeep
		}
		v := value{kind: tArrayOpen, start: t.start}
		for {
			k := p.lx.next()
			if k.kind == tArrayClose {
				v.end = k.end
				return v, nil
			}
			if k.kind == tEOF || k.kind == tDictClose || k.kind == tKeyword && (k.s == "endobj" || k.s == "obj" || k.s == "stream") {
				p.lx.unread(k)
				return v, fmt.Errorf("unterminated array at offset %d", v.start)
			}
			p.lx.unread(k)
			x, err := p.parse(depth + 1)
			if err != nil {
				return v, err
			}
			p.values++
			if p.values < maxValues {
				v.arr = append(v.arr, x)
			}
		}
	case tInt:
		// "12 0 R" is a reference.
		t2 := p.lx.next()
		if t2.kind == tInt {
			t3 := p.lx.next()
			if t3.kind == tKeyword && t3.s == "R" {
				return value{kind: tRef, i: t.i}, nil
			}
			p.lx.unread(t3)
		}
		p.lx.unread(t2)
		return value{kind: tInt, i: t.i}, nil
	case tReal, tName:
		return value{kind: t.kind, s: t.s}, nil
	case tString:
		return value{kind: tString, s: t.s, start: t.start, end: t.end, truncated: t.truncated, hex: t.hex, bad: t.bad}, nil
	case tKeyword:
		switch t.s {
		case "true", "false", "null":
			return value{kind: tKeyword, s: t.s}, nil
		}
		p.lx.unread(t)
		return value{}, fmt.Errorf("unexpected keyword %q at offset %d", trunc(t.s), t.start)
	default:
		return value{}, fmt.Errorf("unexpected token at offset %d", t.start)
	}
}

func trunc(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}

// sigDict is a signature dictionary found in the file.
type sigDict struct {
	object int64 // number of the indirect object holding it
	dict   value
}

// scanResult is what one pass over the file found.
type scanResult struct {
	sigs      []sigDict
	sigCount  int // signature dictionaries seen, kept or not
	sigBytes  int // /Contents bytes kept
	sawEOF    bool
	endsAtEOF bool     // only whitespace follows the last %%EOF
	hazards   []string // structures digitorus/pdf cannot parse safely
}

// scan walks the whole input. It fails only when the input cannot be read;
// malformed objects are skipped.
func scan(ra io.ReaderAt, size int64) (*scanResult, error) {
	src := newSource(ra, size)
	lx := &lexer{src: src}
	res := &scanResult{}
	var prev [2]token // the two tokens before the current one
	for {
		lx.budget = maxStringBytes
		t := lx.next()
		if t.kind == tEOF {
			break
		}
		switch {
		case t.kind == tKeyword && t.s == "obj" && prev[0].kind == tInt && prev[1].kind == tInt:
			p := &parser{lx: lx}
			v, err := p.parse(0)
			if err == nil {
				res.collect(prev[0].i, v, 0)
				res.vet(v)
				if n := lx.next(); n.kind == tKeyword && n.s == "stream" {
					skipStream(src, v)
				} else {
					lx.unread(n)
				}
			}
			prev = [2]token{}
			continue
		case t.kind == tKeyword && t.s == "xref":
			res.vetXrefTable(lx)
		case t.kind == tKeyword && t.s == "trailer":
			p := &parser{lx: lx}
			if v, err := p.parse(0); err == nil {
				if sz, ok := v.key("Size"); ok && sz.kind == tInt && (sz.i < 0 || sz.i > maxXrefObjects) {
					res.hazards = append(res.hazards, fmt.Sprintf("trailer /Size %d", sz.i))
				}
			}
		}
		prev[0], prev[1] = prev[1], t
	}
	res.sawEOF = lx.sawEOF
	if src.err != nil {
		return nil, src.err
	}
	if tail := size - lx.eofEnd; lx.sawEOF && tail <= 1024 {
		b := make([]byte, tail)
		if _, err := ra.ReadAt(b, lx.eofEnd); err == nil || errors.Is(err, io.EOF) {
			res.endsAtEOF = len(bytes.Trim(b, "\x00\t\n\f\r ")) == 0
		}
	}
	return res, nil
}

// skipStream moves past the data of a stream whose dictionary is d. A direct
// /Length is trusted only when endstream follows it; otherwise the data ends
// at the next endstream keyword.
func skipStream(src *source, d value) {
	// The keyword stream is followed by CRLF or LF (CR alone is tolerated).
	if c, ok := src.peek(); ok && c == '\r' {
		src.pos++
	}
	if c, ok := src.peek(); ok && c == '\n' {
		src.pos++
	}
	start := src.pos
	if n, ok := d.key("Length"); ok && n.kind == tInt && n.i >= 0 && n.i <= src.size-start {
		end := start + n.i
		for _, eol := range []string{"", "\n", "\r\n", "\r"} {
			if src.hasPrefixAt(end, eol+"endstream") {
				src.pos = end
				return
			}
		}
	}
	if i := src.index("endstream"); i >= 0 {
		src.pos = i
		return
	}
	src.pos = src.size
}

// collect records the signature dictionaries in v, which may be nested (a
// signature field whose /V is a direct dictionary).
func (r *scanResult) collect(obj int64, v value, depth int) {
	if depth > maxDepth {
		return
	}
	switch v.kind {
	case tDictOpen:
		if isSigDict(v) {
			r.addSig(obj, v)
			return
		}
		for _, x := range v.dict {
			r.collect(obj, x, depth+1)
		}
	case tArrayOpen:
		for _, x := range v.arr {
			r.collect(obj, x, depth+1)
		}
	}
}

// addSig keeps the entries of a signature dictionary that Verify reads,
// within the bounds on their number and size.
func (r *scanResult) addSig(obj int64, v value) {
	r.sigCount++
	if len(r.sigs) == maxSignatures {
		return
	}
	d := value{kind: tDictOpen, dict: map[string]value{}, start: v.start, end: v.end}
	for _, k := range []string{"Type", "Filter", "SubFilter", "ByteRange", "Contents", "Name", "Reason", "Location", "ContactInfo", "M"} {
		if x, ok := v.dict[k]; ok {
			d.dict[k] = x
		}
	}
	c := d.dict["Contents"]
	if r.sigBytes += len(c.s); r.sigBytes > maxSigBytes {
		c.s, c.truncated = "", true
		d.dict["Contents"] = c
	}
	r.sigs = append(r.sigs, sigDict{object: obj, dict: d})
}

func isSigDict(v value) bool {
	br, ok1 := v.key("ByteRange")
	c, ok2 := v.key("Contents")
	if !ok1 || !ok2 || br.kind != tArrayOpen || c.kind != tString {
		return false
	}
	switch v.name("Type") {
	case "Sig", "DocTimeStamp":
		return true
	}
	return v.name("Filter") != "" || v.name("SubFilter") != ""
}

// vet notes values that make digitorus/pdf allocate without bound or loop
// forever (it cannot be bounded from outside, and a runtime out-of-memory
// or stack overflow cannot be recovered). Sign refuses such input.
func (r *scanResult) vet(v value) {
	if v.kind != tDictOpen {
		return
	}
	bad := func(format string, args ...any) { r.hazards = append(r.hazards, fmt.Sprintf(format, args...)) }
	intOver := func(x value, limit int64) bool { return x.kind == tInt && (x.i < 0 || x.i > limit) }
	switch v.name("Type") {
	case "XRef":
		if x, ok := v.key("Size"); ok && intOver(x, maxXrefObjects) {
			bad("xref stream /Size %d", x.i)
		}
		if x, ok := v.key("W"); ok {
			for _, w := range x.arr {
				if intOver(w, 8) {
					bad("xref stream /W entry %d", w.i)
				}
			}
		}
		if x, ok := v.key("Index"); ok {
			for _, w := range x.arr {
				if intOver(w, maxXrefObjects) {
					bad("xref stream /Index entry %d", w.i)
				}
			}
		}
	case "ObjStm":
		if x, ok := v.key("N"); ok && intOver(x, maxXrefObjects) {
			bad("object stream /N %d", x.i)
		}
		if _, ok := v.key("Extends"); ok {
			bad("object stream with /Extends")
		}
		if x, ok := v.key("Length"); ok && x.kind != tInt {
			bad("object stream with an indirect /Length")
		}
	}
	if p, ok := v.key("DecodeParms"); ok {
		ps := []value{p}
		if p.kind == tArrayOpen {
			ps = p.arr
		}
		for _, p := range ps {
			if x, ok := p.key("Columns"); ok && intOver(x, 1<<20) {
				bad("/DecodeParms /Columns %d", x.i)
			}
		}
	}
}

// vetXrefTable reads the subsection headers of a classic xref table.
func (r *scanResult) vetXrefTable(lx *lexer) {
	for {
		a := lx.next()
		if a.kind != tInt {
			lx.unread(a)
			return
		}
		b := lx.next()
		if b.kind != tInt {
			lx.unread(b)
			return
		}
		if c := lx.next(); c.kind == tKeyword && (c.s == "n" || c.s == "f") {
			continue // an entry: offset, generation, type
		} else {
			lx.unread(c)
		}
		// A subsection header: first object number and count.
		if a.i < 0 || b.i < 0 || a.i > maxXrefObjects || b.i > maxXrefObjects {
			r.hazards = append(r.hazards, fmt.Sprintf("xref subsection %d %d", a.i, b.i))
		}
	}
}
