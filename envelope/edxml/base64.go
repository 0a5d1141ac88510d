package edxml

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// b64check validates base64 text as it streams by, without keeping it, and
// works out the decoded size. White space anywhere is allowed (producers
// wrap lines); the URL-safe alphabet is tolerated.
type b64check struct {
	n       int64 // alphabet characters
	pad     int   // '=' seen
	urlSafe bool
	err     error
	errLine int
}

func (c *b64check) write(p []byte, line int) {
	if c.err != nil {
		return
	}
	for i := 0; i < len(p); i++ {
		ch := p[i]
		switch {
		case ch == '\n':
			line++
		case ch == ' ' || ch == '\t' || ch == '\r':
		case ch == '=':
			c.pad++
			if c.pad > 2 {
				c.fail(line, fmt.Errorf("%w: more than two '=' of padding", ErrBadBase64))
				return
			}
		case ch >= 'A' && ch <= 'Z', ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9', ch == '+', ch == '/', ch == '-', ch == '_':
			if c.pad > 0 {
				c.fail(line, fmt.Errorf("%w: data after '=' padding", ErrBadBase64))
				return
			}
			if ch == '-' || ch == '_' {
				c.urlSafe = true
			}
			c.n++
		default:
			r, _ := utf8.DecodeRune(p[i:])
			c.fail(line, fmt.Errorf("%w: character %q after %d base64 characters", ErrBadBase64, r, c.n))
			return
		}
	}
}

func (c *b64check) fail(line int, err error) { c.err, c.errLine = err, line }

// finish checks the length and returns the decoded size.
func (c *b64check) finish() (int64, error) {
	if c.err != nil {
		return -1, c.err
	}
	total := c.n + int64(c.pad)
	if c.pad > 0 && total%4 != 0 {
		return -1, fmt.Errorf("%w: %d characters with padding, want a multiple of 4", ErrBadBase64, total)
	}
	if c.n%4 == 1 {
		return -1, fmt.Errorf("%w: %d characters, one too many or three too few", ErrBadBase64, c.n)
	}
	size := c.n / 4 * 3
	switch c.n % 4 {
	case 2:
		size++
	case 3:
		size += 2
	}
	return size, nil
}

// encoding picks the decoder for what was seen: unpadded text needs the raw
// encoding.
func (c *b64check) encoding() *base64.Encoding {
	if c.pad == 0 && c.n%4 != 0 {
		return base64.RawStdEncoding
	}
	return base64.StdEncoding
}

// b64filter drops white space and maps the URL-safe alphabet to the
// standard one, in place, so base64.NewDecoder sees clean text.
type b64filter struct{ r io.Reader }

func (f b64filter) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		j := 0
		for _, ch := range p[:n] {
			switch ch {
			case ' ', '\t', '\r', '\n':
				continue
			case '-':
				ch = '+'
			case '_':
				ch = '/'
			}
			p[j] = ch
			j++
		}
		if j > 0 || err != nil || n == 0 {
			return j, err
		}
	}
}

// decodeErrReader turns decoding errors into a *ParseError naming the
// element, so that a failure while streaming says which attachment.
type decodeErrReader struct {
	r    io.Reader
	path string
	line int
}

func (d decodeErrReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		var te *textError
		if _, ok := err.(base64.CorruptInputError); ok {
			err = fmt.Errorf("%w: %v", ErrBadBase64, err)
		} else if errors.As(err, &te) {
			err = fmt.Errorf("%w: %s", ErrSyntax, te.msg)
		}
		err = &ParseError{Path: d.path, Line: d.line, Err: err}
	}
	return n, err
}
