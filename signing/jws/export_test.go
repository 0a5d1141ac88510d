package jws

import "reflect"

// The quick pass and the full check, for the tests that hold one to the
// other with the envelope's own shapes (jsonscan_test.go).
var QuickKeysOK = quickKeysOK

func CheckJSONKeysSlow(data []byte, typ reflect.Type) error {
	return checkJSONKeysSlow(data, jsonCheck{typ: typ})
}
