package edxml

import (
	"errors"
	"fmt"
	"strings"

	"github.com/docaxis/docaxis/envelope"
)

// Sentinel errors. Every error this package returns for bad input matches one
// of them with errors.Is; errors about a place in a file are *ParseError.
var (
	// ErrSyntax: the bytes are not well-formed XML (unclosed or mismatched
	// element, truncated file, bad character).
	ErrSyntax = errors.New("malformed XML")
	// ErrTooLarge: the input, one element's text, the nesting depth or the
	// element count is over its limit.
	ErrTooLarge = errors.New("too large")
	// ErrNotEdXML: the root element is not edXML or edXMLEnvelope, or there
	// is no element at all.
	ErrNotEdXML = errors.New("not an edXML message")
	// ErrCharset: the file declares an encoding other than UTF-8.
	ErrCharset = errors.New("unsupported character encoding")
	// ErrMissing: a required element or value is absent.
	ErrMissing = errors.New("required element missing")
	// ErrBadDate: a date or timestamp is not yyyy/MM/dd [HH:mm:ss].
	ErrBadDate = errors.New("bad date")
	// ErrBadValue: a value outside its allowed set (e.g. BussinessDocType 7).
	ErrBadValue = errors.New("bad value")
	// ErrBadBase64: attachment content that is not base64.
	ErrBadBase64 = errors.New("bad base64 content")
	// ErrUnknownStatus: a StatusCode that is not an edXML status code, or a
	// state that has none. It also matches envelope.ErrUnknownState.
	ErrUnknownStatus = fmt.Errorf("%w (edXML status code)", envelope.ErrUnknownState)
	// ErrKind: an envelope of the wrong kind for the conversion asked.
	ErrKind = errors.New("wrong envelope kind")
	// ErrExtra: an Envelope.Extra value under an edxml.* key that cannot be
	// read back (hand-edited JSON, bad date).
	ErrExtra = errors.New("bad edXML value in envelope extra")
)

// ParseError says where in an edXML file something is wrong: the element
// path from the root (local names as written in the file, with [n] for the
// n-th repeated sibling when n > 1) and the 1-based line of the element's
// start tag (or of the offending character for syntax and base64 errors).
type ParseError struct {
	Path string
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("edxml: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *ParseError) Unwrap() error { return e.Err }
