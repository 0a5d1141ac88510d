package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestOperatorAPI(t *testing.T) {
	e := newOperatorEnv(t)
	ok := func(path string) map[string]any {
		t.Helper()
		status, v := e.call("GET", path, e.opToken)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, status, v)
		}
		return v
	}
	list := func(v map[string]any, key string) []map[string]any {
		var out []map[string]any
		for _, x := range v[key].([]any) {
			out = append(out, x.(map[string]any))
		}
		return out
	}

	t.Run("tokens do not cross", func(t *testing.T) {
		if status, v := e.call("GET", "/v1/operator/me", e.agencyTok); status != http.StatusUnauthorized || v["code"] != "unauthorized" {
			t.Fatalf("agency token on the operator API: %d %v", status, v)
		}
		if status, _ := e.call("GET", "/v1/agencies", e.opToken); status != http.StatusUnauthorized {
			t.Fatalf("operator token on the agencies' API: %d", status)
		}
		if me := ok("/v1/operator/me"); me["operator"] != "Nguyễn Văn An" {
			t.Fatalf("me = %v", me)
		}
	})

	t.Run("directory tree", func(t *testing.T) {
		top := ok("/v1/operator/directory?limit=500")
		if int(top["total"].(float64)) != e.entries {
			t.Fatalf("total %v, want %d", top["total"], e.entries)
		}
		var nghean map[string]any
		for _, a := range list(top, "agencies") {
			if a["parent"] != nil {
				t.Fatalf("top level holds %v", a)
			}
			if a["code"] == ngheAn {
				nghean = a
			}
		}
		if nghean == nil || nghean["children"].(float64) != 3 {
			t.Fatalf("Nghệ An at the top: %v", nghean)
		}
		// Communes under a department, a page at a time.
		p1 := ok("/v1/operator/directory?parent=" + ngheAnDept)
		if n := len(list(p1, "agencies")); n != 100 || p1["next"].(float64) != 100 {
			t.Fatalf("first page: %d entries, next %v", n, p1["next"])
		}
		p2 := ok("/v1/operator/directory?parent=" + ngheAnDept + "&offset=100")
		if n := len(list(p2, "agencies")); n != communesUnder-100 || p2["next"].(float64) != -1 {
			t.Fatalf("second page: %d entries, next %v", n, p2["next"])
		}
		found := list(ok("/v1/operator/directory?q="+url.QueryEscape("so noi vu NGHE AN")), "agencies")
		if len(found) != 1 || found[0]["code"] != ngheAnDept || fmt.Sprint(found[0]["path"]) != "["+ngheAn+"]" {
			t.Fatalf("search: %v", found)
		}
		one := ok("/v1/operator/directory/" + ngheAnDept)
		if a := one["agency"].(map[string]any); a["system"] != ngheAnSystem || a["children"].(float64) != communesUnder {
			t.Fatalf("entry: %v", one)
		}
	})

	t.Run("systems", func(t *testing.T) {
		sys := list(ok("/v1/operator/systems"), "systems")
		if len(sys) != 1 || sys[0]["id"] != ngheAnSystem || sys[0]["agencies"].(float64) != communesUnder+1 || sys[0]["not_after"] == nil {
			t.Fatalf("systems: %v", sys)
		}
		ag := ok("/v1/operator/systems/" + ngheAnSystem + "/agencies?limit=10")
		if len(list(ag, "agencies")) != 10 || ag["total"].(float64) != communesUnder+1 {
			t.Fatalf("agencies of the system: %v", ag)
		}
	})

	t.Run("quarantine retry with audit trail", func(t *testing.T) {
		entries := list(ok("/v1/operator/quarantine"), "entries")
		if len(entries) != 1 || entries[0]["agency"] != sonLa || !strings.Contains(entries[0]["reason"].(string), "không lưu được") {
			t.Fatalf("quarantine: %v", entries)
		}
		seq := fmt.Sprint(e.quarantine)
		entry := ok("/v1/operator/quarantine/" + seq)
		msg := entry["message"].(map[string]any)
		if msg["verified"] != true || msg["envelope"].(map[string]any)["subject"] != "Công văn bị cách ly" {
			t.Fatalf("entry: %v", entry)
		}
		if status, v := e.call("POST", "/v1/operator/quarantine/"+seq+"/retry", e.opToken); status != http.StatusOK {
			t.Fatalf("retry: %d %v", status, v)
		}
		if status, _ := e.call("POST", "/v1/operator/quarantine/"+seq+"/retry", e.opToken); status != http.StatusNotFound {
			t.Fatalf("retry again: %d", status)
		}
		audit := list(ok("/v1/operator/audit"), "actions")
		if len(audit) != 1 || audit[0]["operator"] != "Nguyễn Văn An" || audit[0]["target"] != seq || audit[0]["result"] != "ok" || audit[0]["agency"] != sonLa {
			t.Fatalf("audit trail: %v", audit)
		}
		if n := len(list(ok("/v1/operator/quarantine"), "entries")); n != 0 {
			t.Fatalf("%d entries left", n)
		}
	})

	t.Run("links, alerts, statistics", func(t *testing.T) {
		if links := list(ok("/v1/operator/federation"), "links"); len(links) != 2 || links[1]["state"] != "down" {
			t.Fatalf("links: %v", links)
		}
		al := list(ok("/v1/operator/alerts"), "alerts")
		if len(al) != 1 || al[0]["rule"] != "disk_filling" || al[0]["state"] != "firing" {
			t.Fatalf("alerts: %v", al)
		}
		st := ok("/v1/operator/stats?by=agency")
		total := st["total"].(map[string]any)
		if total["sent"].(float64) != 2 || total["received"].(float64) != 2 || total["delivered"].(float64) != 1 {
			t.Fatalf("stats total: %v", total)
		}
	})

	t.Run("bad queries", func(t *testing.T) {
		for _, path := range []string{
			"/v1/operator/directory?limit=0",
			"/v1/operator/directory?limit=501",
			"/v1/operator/directory?offset=-1",
			"/v1/operator/directory?limit=ten",
			"/v1/operator/directory?q=" + strings.Repeat("a", 201),
			"/v1/operator/directory?parent=" + url.QueryEscape("axis.>"),
			"/v1/operator/directory?q=a&q=b",
			"/v1/operator/directory?q=%00",
			"/v1/operator/directory?q=%ff",
			"/v1/operator/directory?q=%zz",
			"/v1/operator/directory?x=" + strings.Repeat("b", 2100),
			"/v1/operator/directory/" + url.PathEscape("a*b"),
			"/v1/operator/quarantine?agency=" + url.QueryEscape("*"),
			"/v1/operator/quarantine/0",
			"/v1/operator/quarantine/abc",
			"/v1/operator/quarantine/18446744073709551616",
			"/v1/operator/stats?from=2025-13-01",
			"/v1/operator/stats?from=2020-01-01&to=2025-01-01",
			"/v1/operator/stats?from=2025-02-01&to=2025-01-01",
			"/v1/operator/stats?by=ministry",
			"/v1/operator/stats?period=week",
		} {
			if status, v := e.call("GET", path, e.opToken); status != http.StatusBadRequest || v["code"] != "bad_request" {
				t.Errorf("GET %.80s: %d %v", path, status, v)
			}
		}
		if status, _ := e.call("GET", "/v1/operator/directory/000.00.00.H63", e.opToken); status != http.StatusNotFound {
			t.Errorf("unknown agency: %d", status)
		}
	})
}
