package httpapi

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker"
)

// nationalDirectory is 100,000 entries: 63 provinces, 40 departments each,
// and communes under the departments.
func nationalDirectory() []broker.Agency {
	var list []broker.Agency
	for p := 1; len(list) < 100000; p++ {
		province := fmt.Sprintf("000.00.00.H%02d", p%100)
		if p >= 100 {
			province = fmt.Sprintf("000.00.00.K%02d", p%100)
		}
		list = append(list, broker.Agency{Code: province, Name: fmt.Sprintf("UBND tỉnh %d", p)})
		for d := 1; d <= 40 && len(list) < 100000; d++ {
			dept := fmt.Sprintf("000.%02d.%02d.%s", d, p%100, province[10:])
			list = append(list, broker.Agency{Code: dept, Name: fmt.Sprintf("Sở %d tỉnh %d", d, p), Parent: province})
			for c := 1; c <= 40 && len(list) < 100000; c++ {
				list = append(list, broker.Agency{Code: fmt.Sprintf("%03d.%02d.%02d.%s", c, d, p%100, province[10:]),
					Name: fmt.Sprintf("Xã Hòa Bình %d huyện %d tỉnh %d", c, d, p), Parent: dept})
			}
		}
	}
	return list
}

func TestDirectoryIndexAtNationalScale(t *testing.T) {
	idx := buildDirIndex(nationalDirectory())
	if len(idx.entries) != 100000 {
		t.Fatalf("%d entries", len(idx.entries))
	}
	top := idx.children[""]
	if len(top) != 61 { // 100,000 / (1 + 40 + 1,600) rounded up
		t.Fatalf("%d at the top", len(top))
	}
	dept := idx.children[idx.entries[top[0]].Code]
	if len(dept) != 40 || idx.view(dept[0], false).Children != 40 {
		t.Fatalf("first province has %d departments", len(dept))
	}
	// A search without diacritics, one page, with the path to open.
	found, more := idx.search("007.03.12 hoa binh", 0, 10)
	if len(found) != 1 || more {
		t.Fatalf("search found %d (more %v)", len(found), more)
	}
	v := idx.view(found[0], true)
	if len(v.Path) != 2 || !strings.HasPrefix(v.Path[0], "000.00.00.") {
		t.Fatalf("path %v", v.Path)
	}
	all, more := idx.search("xa", 0, 500)
	if len(all) != 500 || !more {
		t.Fatalf("a broad search returns %d, more %v: want one page of 500", len(all), more)
	}
}

func BenchmarkDirectorySearch(b *testing.B) {
	idx := buildDirIndex(nationalDirectory())
	b.ResetTimer()
	for b.Loop() {
		idx.search("so 12 tinh 40", 0, 50)
	}
}

// FuzzOperatorQuery: any query string is either refused or read into
// bounded values, never a panic.
func FuzzOperatorQuery(f *testing.F) {
	for _, s := range []string{"", "q=s%C3%B4", "limit=10&offset=100", "limit=0", "q=%ff", "a=1&a=2", "offset=-1", "parent=000.00.00.H41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest("GET", "/v1/operator/directory", nil)
		r.URL.RawQuery = raw
		if _, err := queryValues(r); err != nil {
			return
		}
		offset, limit, err := pageParams(r)
		if err != nil {
			return
		}
		if limit < 1 || limit > maxPage || offset < 0 || offset > 1<<24 {
			t.Fatalf("%q: offset %d limit %d accepted", raw, offset, limit)
		}
	})
}
