// Package jws is the one JWS (RFC 7515) layer of docaxis: every signed
// statement of the bus (envelopes and statuses, directory bindings,
// federation trace entries, audit checkpoints) is a compact serialisation
// signed with the key of the leaf certificate of its x5c chain, and opened
// here with the same strict checks. What a payload means, and whether its
// chain is trusted, is for the caller (envelope, signing.Verifier, audit,
// federation).
//
// It sits below envelope and signing and imports neither.
package jws
