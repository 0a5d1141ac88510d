package jws

import "errors"

var (
	// ErrMalformed is matched by every error about bytes that are not a
	// well-formed JWS of the kind asked for.
	ErrMalformed = errors.New("malformed JWS")
	// ErrTooLarge: input or output over the size limit (MaxSize).
	ErrTooLarge = errors.New("JWS too large")
	// ErrBadSignature: the signature does not match the bytes.
	ErrBadSignature = errors.New("signature does not match the signed bytes")
	// ErrUnsigned: input that carries no signature at all (bare JSON, an
	// empty signature, alg "none").
	ErrUnsigned = errors.New("not signed")
)

// Error is an error of Sign or Open: Err is one of the sentinels above,
// Detail says what was wrong. Callers that name the signed thing (an
// envelope) give Err their own sentinel and keep Detail.
type Error struct {
	Err    error
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Err }
