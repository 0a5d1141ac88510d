package tsa

import "errors"

var (
	// ErrMalformed: the bytes are not a TimeStampResp (or TimeStampReq)
	// this package can read: a TSA that answered garbage.
	ErrMalformed = errors.New("time-stamp malformed")
	// ErrRejected: the TSA answered with a failure status.
	ErrRejected = errors.New("time-stamp request rejected by the TSA")
	// ErrSignature: the token's CMS signature, its signed attributes or
	// its signing-certificate binding do not hold.
	ErrSignature = errors.New("time-stamp token signature not valid")
	// ErrUntrusted: the token's signer is not a time-stamping certificate
	// chaining to a trusted TSA root at the token's time.
	ErrUntrusted = errors.New("time-stamp token from an untrusted TSA")
	// ErrImprint: the token covers other data than the digest asked about.
	ErrImprint = errors.New("time-stamp token for other data")
	// ErrNonce: the token does not answer the request's nonce (a replayed
	// answer).
	ErrNonce = errors.New("time-stamp token nonce mismatch")
	// ErrUnavailable: no configured TSA gave a valid token.
	ErrUnavailable = errors.New("no time-stamping authority available")
)
