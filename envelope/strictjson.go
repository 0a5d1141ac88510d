package envelope

import "github.com/docaxis/docaxis/signing/jws"

// The strict JSON key check lives with the JWS layer that opens every
// signed statement (signing/jws); these keep its names here for the
// envelope's callers.

// MaxJSONDepth bounds the nesting of objects and arrays CheckJSONKeys
// accepts.
const MaxJSONDepth = jws.MaxJSONDepth

var (
	ErrDuplicateKey = jws.ErrDuplicateKey
	ErrKeySpelling  = jws.ErrKeySpelling
	ErrUnknownKey   = jws.ErrUnknownKey
	ErrJSONDepth    = jws.ErrJSONDepth
	ErrJSONSyntax   = jws.ErrJSONSyntax
)

// JSONKeyError says where in a JSON text a key check failed.
type JSONKeyError = jws.JSONKeyError

// JSONCheckOption adjusts CheckJSONKeys.
type JSONCheckOption = jws.JSONCheckOption

// ExactFields is jws.ExactFields.
func ExactFields(v any) JSONCheckOption { return jws.ExactFields(v) }

// CheckJSONKeys is jws.CheckJSONKeys.
func CheckJSONKeys(data []byte, opts ...JSONCheckOption) error {
	return jws.CheckJSONKeys(data, opts...)
}

// foldKey is jws.FoldKey: keys encoding/json would match with each other.
func foldKey(s string) string { return jws.FoldKey(s) }
