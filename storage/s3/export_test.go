package s3

import (
	"slices"
	"sync"

	"github.com/docaxis/docaxis/storage"
)

// TempNames makes st record the temporary names its Puts use and returns
// them on demand.
func TempNames(st storage.Store) func() []string {
	var mu sync.Mutex
	var names []string
	st.(*store).onTemp = func(n string) {
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

// SetCopyPartSize lowers the part size of st's server-side copies, so a
// small object takes the multipart copy that objects over 5 GiB take.
func SetCopyPartSize(st storage.Store, n uint64) { st.(*store).copyPartSize = n }
