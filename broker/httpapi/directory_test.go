package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/docaxis/docaxis/broker"
)

// TestAgencyChangesSince: a DMS keeps its copy of the directory current by
// asking for the changes since the version it holds, deletions included.
func TestAgencyChangesSince(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	type changes struct {
		Since, Version uint64
		Agencies       []struct {
			Code, Name, Parent, State string
			Version                   uint64
		}
	}
	get := func(query string) changes {
		t.Helper()
		res := e.do("GET", "/v1/agencies?"+query, govOffice, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/agencies?%s = %d %s", query, res.StatusCode, res.body)
		}
		var c changes
		if err := json.Unmarshal(res.body, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	all := get("since=0")
	if len(all.Agencies) != len(agencyNames) || all.Version == 0 {
		t.Fatalf("since=0: %+v", all)
	}
	admin := e.bus.Service.Client
	child := broker.Agency{Code: "000.01.41.H41", Name: "Sở Nội vụ", Parent: ngheAn}
	if err := admin.RegisterAgency(ctx, child); err != nil {
		t.Fatal(err)
	}
	child.State = broker.StateDeleted
	if err := admin.RegisterAgency(ctx, child); err != nil {
		t.Fatal(err)
	}
	got := get(fmt.Sprintf("since=%d", all.Version))
	if len(got.Agencies) != 1 || got.Agencies[0].Code != child.Code || got.Agencies[0].State != "deleted" || got.Version <= all.Version {
		t.Fatalf("since=%d: %+v", all.Version, got)
	}
	if again := get(fmt.Sprintf("since=%d", got.Version)); len(again.Agencies) != 0 || again.Version != got.Version {
		t.Fatalf("nothing changed, got %+v", again)
	}
	if kids := get("parent=" + ngheAn); len(kids.Agencies) != 1 || kids.Agencies[0].Parent != ngheAn {
		t.Fatalf("parent=%s: %+v", ngheAn, kids)
	}
	for _, bad := range []string{"since=-1", "since=x", "since=99999999999999999999", "parent=a%20b"} {
		if res := e.do("GET", "/v1/agencies?"+bad, govOffice, nil); res.StatusCode != http.StatusBadRequest {
			t.Errorf("GET /v1/agencies?%s = %d, want 400", bad, res.StatusCode)
		}
	}
	if res := e.do("GET", "/v1/agencies?since=0", "", nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %d", res.StatusCode)
	}
}
