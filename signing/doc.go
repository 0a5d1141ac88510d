// Package signing holds keys, certificates and trust for docaxis: a
// development CA, agency identities whose certificates bind an agency code,
// import of existing keys, and the Verifier that checks a signed envelope's
// signature, chain, validity dates and that its certificate belongs to the
// agency named in its from field.
package signing
