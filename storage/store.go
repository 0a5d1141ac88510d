// Package storage holds the attachment stores of docaxis. Attachments never
// travel inside NATS messages: a sender streams them into a Store, the
// envelope carries their name, size and SHA-256, and recipients stream them
// back and check the hash.
//
// Stores are content-addressed: the key of an object is derived from the
// SHA-256 of its bytes (see Key), so the same bytes sent twice are stored
// once.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"
)

var (
	// ErrNotFound: no object under that key.
	ErrNotFound = errors.New("attachment not found in store")
	// ErrDigestMismatch: the bytes read do not hash to the expected SHA-256.
	ErrDigestMismatch = errors.New("attachment content does not match its SHA-256")
	// ErrSizeMismatch: the bytes read are not of the expected size.
	ErrSizeMismatch = errors.New("attachment size does not match the manifest")
	// ErrUnavailable: the store cannot be reached.
	ErrUnavailable = errors.New("attachment store unavailable")
	// ErrInvalidKey: the key is not a content address.
	ErrInvalidKey = errors.New("invalid attachment key")
)

// Object describes a stored object.
type Object struct {
	Key     string    `json:"key"`
	SHA256  string    `json:"sha256"` // hex
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time,omitempty"`
}

// PutOptions describe an upload. Size is a hint (-1 when unknown) used to
// pick part sizes; Progress, if set, is called with the bytes read so far.
type PutOptions struct {
	Size      int64
	MediaType string
	Progress  func(done int64)
}

// Store is an attachment store. Implementations stream in both directions
// with bounded memory and are safe for concurrent use.
type Store interface {
	// Put streams r into the store, hashing it on the way, and returns the
	// content address. The same bytes put twice are stored once. An
	// interrupted Put leaves no object visible under a content address.
	Put(ctx context.Context, r io.Reader, opts PutOptions) (Object, error)
	// Get streams the object under key. The caller checks the hash (see
	// VerifyingReader); the store does not buffer the object.
	Get(ctx context.Context, key string) (io.ReadCloser, Object, error)
	// Stat describes the object under key.
	Stat(ctx context.Context, key string) (Object, error)
	// Delete removes the object under key; deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every stored object, until fn returns an error.
	List(ctx context.Context, fn func(Object) error) error
}

// KeyPrefix starts every content address.
const KeyPrefix = "sha256/"

var keyPattern = regexp.MustCompile(`^sha256/[0-9a-f]{64}$`)

// Key returns the content address of bytes whose SHA-256 is sha256hex.
func Key(sha256hex string) string { return KeyPrefix + sha256hex }

// CheckKey returns the SHA-256 a key addresses, or an error wrapping
// ErrInvalidKey.
func CheckKey(key string) (string, error) {
	if !keyPattern.MatchString(key) {
		return "", fmt.Errorf("%w %q: want sha256/<64 hex digits>", ErrInvalidKey, key)
	}
	return key[len(KeyPrefix):], nil
}
