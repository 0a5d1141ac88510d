// Package signing holds keys, certificates and trust for docaxis: a
// development CA and the one certificate issuer (Issue, with a Purpose:
// agency, system, bus, audit, TLS server, time-stamping), the one way a
// key pair is kept on disk (KeyPairFiles, OpenIssued), agency identities
// whose certificates bind an agency code, import of existing keys, and the
// Verifier that checks a signed envelope's signature, chain, validity
// dates and that its certificate belongs to the agency named in its from
// field. Signatures themselves are made and opened by signing/jws.
package signing
