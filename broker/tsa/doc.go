// Package tsa speaks RFC 3161 (the Time-Stamp Protocol): it asks a
// time-stamping authority for a token over a digest (Client, with
// fail-over between several TSAs), checks a token against the data and
// the TSAs it trusts (ParseResponse, Token.Verify), and runs the bus's own
// local TSA (Authority, served over HTTP as application/timestamp-query)
// so that time-stamping works with no setup.
//
// A token is kept as the DER TimeStampResp the TSA answered: that is the
// .tsr file `openssl ts -reply -in FILE -text` prints and
// `openssl ts -verify` checks, so nobody needs docaxis to check it.
//
// The ASN.1 and CMS encoding is github.com/digitorus/timestamp and
// github.com/digitorus/pkcs7 (already the project's dependencies for PDF
// signatures). They check the CMS signature only; what makes a token
// evidence is checked here: the signer is the certificate the token's ESS
// signing-certificate attribute names, it carries the critical
// id-kp-timeStamping extended key usage and nothing else, it chains to a
// trusted root at the token's time, and the token covers the digest asked
// for (and the nonce sent).
package tsa
