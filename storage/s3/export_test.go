package s3

import (
	"slices"
	"sync"

	"github.com/docaxis/docaxis/storage"
)

// BlobNames makes st record the blob names its Puts use and returns them on
// demand.
func BlobNames(st storage.Store) func() []string {
	var mu sync.Mutex
	var names []string
	st.(*store).onBlob = func(n string) {
		mu.Lock()
		defer mu.Unlock()
		names = append(names, n)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(names)
	}
}

// ListPlain makes st list addresses as against a server that returns no
// metadata in listings (anything but MinIO).
func ListPlain(st storage.Store) { st.(*store).plainList = true }
