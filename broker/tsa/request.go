package tsa

import (
	"crypto"
	"crypto/rand"
	"fmt"
	"math/big"

	"github.com/digitorus/timestamp"
)

// MaxRequestSize bounds a TimeStampReq: an imprint and a nonce.
const MaxRequestSize = 4 << 10

// Request is a time-stamp request for one digest.
type Request struct {
	Hash   crypto.Hash
	Digest []byte
	Nonce  *big.Int
	// CertReq asks the TSA to put its certificate in the token.
	CertReq bool
}

// NewRequest returns a request for the SHA-256 of data with a fresh
// 64-bit nonce, asking for the TSA's certificate.
func NewRequest(data []byte) (*Request, error) {
	h := crypto.SHA256.New()
	h.Write(data)
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, fmt.Errorf("time-stamp request nonce: %w", err)
	}
	return &Request{Hash: crypto.SHA256, Digest: h.Sum(nil), Nonce: nonce, CertReq: true}, nil
}

// Marshal encodes r as a DER TimeStampReq.
func (r *Request) Marshal() ([]byte, error) {
	return (&timestamp.Request{HashAlgorithm: r.Hash, HashedMessage: r.Digest, Nonce: r.Nonce, Certificates: r.CertReq}).Marshal()
}

// ParseRequest reads a DER TimeStampReq.
func ParseRequest(der []byte) (*Request, error) {
	if len(der) > MaxRequestSize {
		return nil, fmt.Errorf("%w: request of %d bytes, at most %d", ErrMalformed, len(der), MaxRequestSize)
	}
	q, err := timestamp.ParseRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if q.HashAlgorithm == crypto.SHA1 || !q.HashAlgorithm.Available() {
		return nil, fmt.Errorf("%w: imprint hash %v not accepted", ErrMalformed, q.HashAlgorithm)
	}
	if len(q.HashedMessage) != q.HashAlgorithm.Size() {
		return nil, fmt.Errorf("%w: imprint of %d bytes for %v", ErrMalformed, len(q.HashedMessage), q.HashAlgorithm)
	}
	if len(q.Extensions) > 0 {
		return nil, fmt.Errorf("%w: request extensions not supported", ErrMalformed)
	}
	return &Request{Hash: q.HashAlgorithm, Digest: q.HashedMessage, Nonce: q.Nonce, CertReq: q.Certificates}, nil
}

// Check verifies that t answers r: same imprint, same nonce.
func (r *Request) Check(t *Token) error {
	if t.Hash != r.Hash {
		return fmt.Errorf("%w: the token's imprint is %v, the request's %v", ErrImprint, t.Hash, r.Hash)
	}
	if string(t.Digest) != string(r.Digest) {
		return fmt.Errorf("%w: the token covers %x, the request asked for %x", ErrImprint, t.Digest, r.Digest)
	}
	if r.Nonce != nil && (t.Nonce == nil || t.Nonce.Cmp(r.Nonce) != 0) {
		return fmt.Errorf("%w: sent %v, the token has %v", ErrNonce, r.Nonce, t.Nonce)
	}
	return nil
}
