package storagetest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
)

// Stream returns a reader of n pseudo-random bytes determined by seed. The
// bytes are generated as they are read, so large objects cost no memory.
func Stream(seed uint64, n int64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return io.LimitReader(rand.NewChaCha8(s), n)
}

// StreamSHA256 returns the hex SHA-256 of Stream(seed, n).
func StreamSHA256(seed uint64, n int64) string {
	h := sha256.New()
	if _, err := io.Copy(h, Stream(seed, n)); err != nil {
		panic(err) // a ChaCha8 stream cannot fail
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Bytes returns the first n bytes of Stream(seed, n).
func Bytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	if _, err := io.ReadFull(Stream(seed, int64(n)), b); err != nil {
		panic(err)
	}
	return b
}
