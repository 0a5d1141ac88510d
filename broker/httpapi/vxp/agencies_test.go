package vxp_test

import (
	"fmt"
	"testing"

	"github.com/docaxis/docaxis/broker"
)

// The directory as the SDK reads it, and a system registering and
// deleting its own agencies when the operator allows.
func TestAgencies(t *testing.T) {
	b := newBench(t, true)
	secA := b.addSystem("sys.a", "000.00.00.H13")
	secB := b.addSystem("sys.b", edocTo)
	a := b.sdk("sys.a", secA)

	reg := mustOK(t, "registerAgency", a.call("registerAgency", nil, []byte(`{id:1, pcode:000.00.00.H13, code:000.01.02.H13, name:Sở Nội vụ, mail:snv@h13.gov.vn}`)))
	_ = reg
	got, err := b.admin.LookupAgency(ctxT(t), "000.01.02.H13")
	if err != nil || got.System != "sys.a" || got.Parent != "000.00.00.H13" || got.Email != "snv@h13.gov.vn" || got.Name != "Sở Nội vụ" {
		t.Fatalf("registered %+v (%v)", got, err)
	}
	// Its own agency's name changes; another system's agency is not taken.
	mustOK(t, "update", a.call("registerAgency", nil, []byte(`{"code":"000.01.02.H13","name":"Sở Nội vụ tỉnh"}`)))
	mustFail(t, "take another's", a.call("registerAgency", nil, []byte(`{"code":"`+edocTo+`","name":"mine now"}`)), "403")
	if got, _ := b.admin.LookupAgency(ctxT(t), edocTo); got.System != "sys.b" {
		t.Fatalf("%s moved to %s", edocTo, got.System)
	}
	mustFail(t, "bad code", a.call("registerAgency", nil, []byte(`{"code":"not a code","name":"x"}`)), "400")
	mustFail(t, "no code", a.call("registerAgency", nil, []byte(`{"name":"x"}`)), "400")
	mustFail(t, "unknown parent", a.call("registerAgency", nil, []byte(`{"code":"000.02.02.H13","name":"x","pcode":"000.00.00.H77"}`)), "400")

	// QD20 by level: 1 is the top.
	top := list(mustOK(t, "QD20 level 1", a.call("getAgenciesListQD20", map[string]any{"level": "1"}, nil)))
	second := list(mustOK(t, "QD20 level 2", a.call("getAgenciesListQD20", map[string]any{"level": "2"}, nil)))
	if len(top) != 2 || len(second) != 1 || second[0]["code102"] != "000.01.02.H13" {
		t.Fatalf("level 1: %v, level 2: %v", top, second)
	}

	// Versioned sync: everything, then only what changed since.
	all := mustOK(t, "sync", a.call("getSynchronizeUnit", nil, nil))
	version := fmt.Sprint(all["version"])
	if n := len(list(all)); n != 3 {
		t.Fatalf("sync lists %d agencies", n)
	}
	mustFail(t, "delete another's", a.call("deleteAgency", map[string]any{"AgencyCode": edocTo}, []byte("{}")), "403")
	mustOK(t, "deleteAgency", a.call("deleteAgency", map[string]any{"AgencyCode": "000.01.02.H13"}, []byte("{}")))
	ch := list(mustOK(t, "sync since", b.sdk("sys.b", secB).call("getSynchronizeUnit", map[string]any{"version": version}, nil)))
	if len(ch) != 1 || ch[0]["code"] != "000.01.02.H13" || ch[0]["deleted"] != true || ch[0]["isAgency"] != true {
		t.Fatalf("changes since %s: %v", version, ch)
	}
	if _, ok := ch[0]["version"].(float64); !ok {
		t.Fatalf("version is not a number: %T", ch[0]["version"])
	}
	for _, it := range list(mustOK(t, "list", a.call("getAgenciesList", nil, nil))) {
		if it["code"] == "000.01.02.H13" {
			t.Fatal("a deleted agency is listed")
		}
	}
	if got, _ := b.admin.LookupAgency(ctxT(t), "000.01.02.H13"); got.State != broker.StateDeleted {
		t.Fatalf("state %s", got.State)
	}
}
