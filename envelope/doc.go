// Package envelope holds the docaxis envelope model, its validation, its
// signed wire form (a JWS compact serialisation with the signer's chain in
// x5c, made and opened by the one JWS layer, signing/jws, with the
// envelope's content type) and the mapping between agency codes and NATS
// subject tokens.
//
// The signature covers the exact bytes that travel: a receiver verifies the
// bytes it got and decodes the payload from those same bytes, so nothing is
// re-serialised between verification and use.
package envelope
