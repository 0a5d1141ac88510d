package signing

import "errors"

var (
	// ErrUntrusted: the chain does not reach a trusted root.
	ErrUntrusted = errors.New("certificate chain not trusted")
	// ErrExpired: a certificate was not valid at the time that matters.
	ErrExpired = errors.New("certificate not valid at that time")
	// ErrRevoked: the signing certificate was revoked before the signature.
	ErrRevoked = errors.New("certificate revoked")
	// ErrAgencyMismatch: the certificate belongs to another agency than the
	// one named in the envelope's from (a spoofed sender).
	ErrAgencyMismatch = errors.New("certificate does not belong to the sending agency")
	// ErrStaleCRL: a CRL older (by number) than the one in force for its CA.
	ErrStaleCRL = errors.New("CRL older than the one in force")
	// ErrNoIdentity: no key is held for that agency.
	ErrNoIdentity = errors.New("no signing identity for agency")
)
