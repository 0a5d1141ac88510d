package jws

// FoldKey maps every key that encoding/json would match with s (Unicode
// simple case folding, as bytes.EqualFold) to one string: what
// CheckJSONKeys calls the same key.
func FoldKey(s string) string { return foldKey(s) }
