package httpapi

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docaxis/docaxis/broker"
)

// dirIndex is the directory as the operator's page reads it: children by
// parent, systems' agencies, and a folded text per entry to search, built
// once from the directory and rebuilt when it is older than dirIndexTTL.
// Each request then touches the entries it answers with, not 100,000.
type dirIndex struct {
	built    time.Time
	entries  []dirEntry       // sorted by code
	byCode   map[string]int   // code -> index in entries
	children map[string][]int // parent code ("" for the top) -> entries, by code
	bySystem map[string][]int // system id -> entries, by code
}

type dirEntry struct {
	broker.Agency
	folded string // fold(code + " " + name + " " + old code)
}

// dirIndexTTL bounds how stale the page's directory may be.
const dirIndexTTL = 10 * time.Second

type dirCache struct {
	mu  sync.Mutex
	idx *dirIndex
}

// index returns the directory index, rebuilt when stale; one request
// rebuilds it while the others wait for it.
func (d *dirCache) index(ctx context.Context, c *broker.Client) (*dirIndex, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.idx != nil && time.Since(d.idx.built) < dirIndexTTL {
		return d.idx, nil
	}
	list, err := c.Agencies(ctx)
	if err != nil {
		return nil, err
	}
	d.idx = buildDirIndex(list)
	return d.idx, nil
}

func buildDirIndex(list []broker.Agency) *dirIndex {
	sort.Slice(list, func(i, j int) bool { return list[i].Code < list[j].Code })
	idx := &dirIndex{built: time.Now(), entries: make([]dirEntry, len(list)), byCode: make(map[string]int, len(list)),
		children: map[string][]int{}, bySystem: map[string][]int{}}
	for i, a := range list {
		idx.entries[i] = dirEntry{Agency: a, folded: fold(a.Code + " " + a.Name + " " + a.OldCode)}
		idx.byCode[a.Code] = i
	}
	for i, e := range idx.entries {
		parent := e.Parent
		if _, ok := idx.byCode[parent]; !ok || parent == e.Code {
			parent = "" // an entry whose parent is unknown shows at the top
		}
		idx.children[parent] = append(idx.children[parent], i)
		if e.System != "" {
			idx.bySystem[e.System] = append(idx.bySystem[e.System], i)
		}
	}
	return idx
}

// operatorAgency is one directory entry on the page.
type operatorAgency struct {
	Code     string    `json:"code"`
	Name     string    `json:"name"`
	Parent   string    `json:"parent,omitempty"`
	OldCode  string    `json:"old_code,omitempty"`
	Email    string    `json:"email,omitempty"`
	System   string    `json:"system,omitempty"`
	State    string    `json:"state"`
	Bus      string    `json:"bus,omitempty"`
	Added    time.Time `json:"added"`
	Children int       `json:"children"`
	// Path is the codes above it, the top first (search results: the
	// tree opens to them).
	Path []string `json:"path,omitempty"`
	// CertNotAfter is when its own certificate ends, if it has one.
	Certificate bool `json:"certificate"`
}

func (idx *dirIndex) view(i int, withPath bool) operatorAgency {
	e := idx.entries[i]
	state := e.State
	if state == "" {
		state = broker.StateActive
	}
	v := operatorAgency{Code: e.Code, Name: e.Name, Parent: e.Parent, OldCode: e.OldCode, Email: e.Email, System: e.System,
		State: state, Bus: e.Bus, Added: e.Added, Children: len(idx.children[e.Code]), Certificate: e.Agency.Certificate != ""}
	if withPath {
		seen := map[string]bool{e.Code: true}
		for p := e.Parent; p != "" && !seen[p] && len(v.Path) < 16; {
			j, ok := idx.byCode[p]
			if !ok {
				break
			}
			seen[p] = true
			v.Path = append([]string{p}, v.Path...)
			p = idx.entries[j].Parent
		}
	}
	return v
}

// search returns the entries whose folded text holds every word of q,
// from offset, at most limit, and whether there are more.
func (idx *dirIndex) search(q string, offset, limit int) ([]int, bool) {
	words := strings.Fields(fold(q))
	var out []int
	skipped := 0
	for i := range idx.entries {
		match := true
		for _, w := range words {
			if !strings.Contains(idx.entries[i].folded, w) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		if skipped < offset {
			skipped++
			continue
		}
		if len(out) == limit {
			return out, true
		}
		out = append(out, i)
	}
	return out, false
}
