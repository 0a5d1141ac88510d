// Package pdf signs official documents as PDF approval signatures and
// verifies the signatures of received ones.
//
// Sign appends a CMS (adbe.pkcs7.detached) signature by an agency's
// identity, made with github.com/digitorus/pdfsign v0.9.0, as an
// incremental update, optionally with an RFC 3161 timestamp; countersigning
// a signed document keeps the earlier signatures valid. Sign verifies its
// output before writing it, and works around two pdfsign v0.9.0 defects:
// its timestamp client has no timeout (Sign relays it under the context),
// and it mistakes a long zero padding of an earlier signature for its own
// placeholder (Sign then masks that padding and rebuilds the signature).
//
// Verify does not rely on pdfsign's verifier, which reports a broken
// signature only in a string field, accepts bytes appended after signing and
// trusts only the system roots. It finds the signature dictionaries itself
// with a bounded linear scan, checks that each ByteRange excludes exactly
// its own /Contents, verifies the CMS over those bytes, checks the signer's
// chain against the bus's signing.Trust, and reports whether the last
// signature covers the whole file. Report.OK sums it up.
//
// Both refuse input over MaxSize. Verify is written for hostile input: it
// neither panics nor allocates without bound, and its time is linear in the
// input size (FuzzVerify exercises it).
package pdf
