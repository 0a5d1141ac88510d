package httpapi

import (
	"io"
)

// capReader fails with a *TooLargeError once more than limit bytes went
// through, so an oversize attachment is refused while it streams in.
type capReader struct {
	r     io.Reader
	n     int64
	limit int64
	what  string
	// err keeps what went wrong reading the request, so that a broken
	// upload is told apart from a store that failed.
	err error
}

func (c *capReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		err = &TooLargeError{What: c.what, Limit: c.limit}
	}
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}
