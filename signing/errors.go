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
	// ErrServiceCertificate: a certificate of one of the bus's own services
	// (ServiceOf) offered as an agency's.
	ErrServiceCertificate = errors.New("certificate is a bus service's, not an agency's")
	// ErrNoIdentity: no key is held for that agency.
	ErrNoIdentity = errors.New("no signing identity for agency")
)
