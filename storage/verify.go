package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// VerifyingReader passes r through and, at EOF, checks that exactly size
// bytes hashing to sha256hex went by. A mismatch is reported by the Read
// that would have returned io.EOF, so a consumer never sees a clean end of
// tampered content. Reading past size fails at once.
type VerifyingReader struct {
	r      io.Reader
	h      hash.Hash
	want   string
	size   int64
	n      int64
	name   string
	failed error
}

// NewVerifyingReader wraps r; name is used in errors.
func NewVerifyingReader(r io.Reader, name string, size int64, sha256hex string) *VerifyingReader {
	return &VerifyingReader{r: r, h: sha256.New(), want: sha256hex, size: size, name: name}
}

func (v *VerifyingReader) Read(p []byte) (int, error) {
	if v.failed != nil {
		return 0, v.failed
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		v.failed = fmt.Errorf("%w: %s: more than %d bytes", ErrSizeMismatch, v.name, v.size)
		return n, v.failed
	}
	if err == io.EOF {
		if v.size >= 0 && v.n != v.size {
			v.failed = fmt.Errorf("%w: %s: %d bytes, manifest says %d", ErrSizeMismatch, v.name, v.n, v.size)
			return n, v.failed
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			v.failed = fmt.Errorf("%w: %s: got %s, manifest says %s", ErrDigestMismatch, v.name, got, v.want)
			return n, v.failed
		}
	}
	return n, err
}
