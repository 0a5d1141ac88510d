package vxp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// Error codes of a failure answer. The SDK reads only status, ErrorCode
// and ErrorDesc; the real axis's values are not known (PROTOCOL.md §7), so
// these follow HTTP's meanings, as strings.
const (
	CodeOK           = "0"
	CodeBadRequest   = "400" // a malformed parameter or body
	CodeUnauthorized = "401" // no signature, wrong signature, unknown or removed system
	CodeForbidden    = "403" // an agency the system does not serve; an operation turned off
	CodeNotFound     = "404" // no such document waiting for the system; no such operation
	CodeMethod       = "405"
	CodeTooLarge     = "413"
	CodeInternal     = "500"
)

// Error is a failure answer: status FAIL, Code, Desc. Err, when set, is
// the cause (logged, matched with errors.Is).
type Error struct {
	Code string
	Desc string
	Err  error
}

func (e *Error) Error() string { return "vxp " + e.Code + ": " + e.Desc }
func (e *Error) Unwrap() error { return e.Err }

func fail(code, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Desc: err.Error(), Err: errors.Unwrap(err)}
}

// ErrAuth is wrapped by every authentication failure.
var ErrAuth = errors.New("authentication failed")

// answer is the response envelope every operation but downloadEdoc
// returns; fields beyond the three the SDK requires are added per
// operation.
type answer map[string]any

func ok(desc string) answer {
	return answer{"status": "OK", "ErrorCode": CodeOK, "ErrorDesc": desc}
}

func failAnswer(e *Error) answer {
	return answer{"status": "FAIL", "ErrorCode": e.Code, "ErrorDesc": e.Desc}
}

// writeAnswer writes a as one line of JSON in US-ASCII: sendEdoc's SDK path
// reads its answer as US-ASCII, so everything beyond is escaped (\uXXXX),
// which every JSON reader decodes back.
func writeAnswer(w http.ResponseWriter, status int, a answer) {
	b, err := json.Marshal(a)
	if err != nil {
		b = []byte(`{"status":"FAIL","ErrorCode":"500","ErrorDesc":"answer not encodable"}`)
	}
	body := append(asciiJSON(b), '\n')
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// asciiJSON escapes the non-ASCII runes of encoded JSON. Outside strings
// JSON is ASCII, so escaping every such rune is safe.
func asciiJSON(b []byte) []byte {
	if !bytes.ContainsFunc(b, func(r rune) bool { return r >= utf8.RuneSelf }) {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/4)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		switch {
		case r < utf8.RuneSelf:
			out = append(out, b[0])
		case r > 0xFFFF:
			r1, r2 := surrogates(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		b = b[n:]
	}
	return out
}

func surrogates(r rune) (rune, rune) {
	r -= 0x10000
	return 0xD800 + (r>>10)&0x3FF, 0xDC00 + r&0x3FF
}
