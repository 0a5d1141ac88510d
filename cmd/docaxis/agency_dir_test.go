package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
)

// `agency import` of JSON lines and CSV, `agency list --since V --json`,
// `agency list --parent`, `agency tree`, `agency delete`, run as the
// binary against a bus with its home.
func TestAgencyDirectoryCommands(t *testing.T) {
	bus := bustest.Start(t)
	dir := t.TempDir()
	run := func(wantOK bool, args ...string) (string, string) {
		t.Helper()
		out, errOut, ok := quarCLI(t, bus, args...)
		if ok != wantOK {
			t.Fatalf("docaxis %s: ok %v, want %v\n%s\n%s", strings.Join(args, " "), ok, wantOK, out, errOut)
		}
		return out, errOut
	}
	run(true, "system", "add", "dms-a", "--name", "DMS tỉnh 1")

	jsonl := filepath.Join(dir, "dir.jsonl")
	writeFile(t, jsonl, strings.Join([]string{
		`{"code":"000.00.00.H01","name":"UBND tỉnh 1","email":"tinh1@example.gov.vn"}`,
		`{"code":"000.00.01.H01","name":"Sở Nội vụ","parent":"000.00.00.H01","old_code":"H01.01"}`,
		`{"code":"001.00.01.H01","name":"UBND huyện 1","parent":"000.00.01.H01","system":"dms-a"}`,
		`{"code":"000.00.02.H01", "name": 7}`,
		``,
		`{"code":"000.00.03.H01","name":"Sở X","colour":"blue"}`,
		`{"code":"000.00.04.H01","name":"Sở Y","parent":"000.00.00.H99"}`,
		`not json`,
	}, "\n")+"\n")
	out, _ := run(false, "agency", "import", jsonl, "--json")
	var summary struct {
		Added, Updated, Unchanged, Failed int
		Version                           uint64
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil {
		t.Fatalf("summary %q: %v\n%s", lines[len(lines)-1], err, out)
	}
	if summary.Added != 3 || summary.Failed != 4 || summary.Version == 0 {
		t.Fatalf("JSON lines import: %+v\n%s", summary, out)
	}
	failed := map[int]string{}
	for _, l := range lines[:len(lines)-1] {
		var e struct {
			Line  int
			Code  string
			Error string
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("error line %q: %v", l, err)
		}
		failed[e.Line] = e.Error
	}
	for n, frag := range map[int]string{4: "not a string", 6: `"colour"`, 7: "000.00.00.H99", 8: "invalid"} {
		if !strings.Contains(failed[n], frag) {
			t.Errorf("line %d: %q, want it to say %q", n, failed[n], frag)
		}
	}
	v1 := summary.Version

	// Again: all unchanged, exit 1 for the same bad lines only.
	out, _ = run(false, "agency", "import", jsonl, "--json")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil || summary.Unchanged != 3 || summary.Added+summary.Updated != 0 || summary.Version != v1 {
		t.Fatalf("re-import: %+v %v", summary, err)
	}

	// CSV with a byte order mark, as spreadsheets export it: one new, one
	// updated.
	csvPath := filepath.Join(dir, "dir.csv")
	writeFile(t, csvPath, "\ufeffcode,name,parent,old_code,email,system\n"+
		"002.00.01.H01,\"UBND huyện 2, tỉnh 1\",000.00.01.H01,,h2@example.gov.vn,dms-a\n"+
		"000.00.01.H01,Sở Nội vụ,000.00.00.H01,H01.01,noivu@example.gov.vn,\n")
	out, _ = run(true, "agency", "import", csvPath)
	if !strings.Contains(out, "1 added, 1 updated, 0 unchanged, 0 failed") {
		t.Fatalf("CSV import: %s", out)
	}
	run(true, "agency", "delete", "001.00.01.H01")

	out, _ = run(true, "agency", "list", "--since", jsonNumber(v1), "--json")
	var ch broker.DirectoryChanges
	if err := json.Unmarshal([]byte(out), &ch); err != nil {
		t.Fatalf("list --since: %q: %v", out, err)
	}
	got := map[string]broker.Agency{}
	for _, a := range ch.Agencies {
		got[a.Code] = a
		if a.Certificate != "" || len(a.Bindings) != 0 {
			t.Errorf("list --since --json carries keys: %+v", a)
		}
	}
	if len(got) != 3 || got["002.00.01.H01"].Name != "UBND huyện 2, tỉnh 1" || got["002.00.01.H01"].System != "dms-a" ||
		got["000.00.01.H01"].Email != "noivu@example.gov.vn" || got["001.00.01.H01"].State != broker.StateDeleted || ch.Since != v1 || ch.Version <= v1 {
		t.Fatalf("list --since %d: %s", v1, out)
	}
	out, _ = run(true, "agency", "list", "--since", jsonNumber(ch.Version), "--json")
	if err := json.Unmarshal([]byte(out), &ch); err != nil || len(ch.Agencies) != 0 {
		t.Fatalf("list --since latest: %s %v", out, err)
	}

	out, _ = run(true, "agency", "list", "--parent", "000.00.01.H01", "--json")
	var kids []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var a broker.Agency
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("list --parent: %q: %v", l, err)
		}
		kids = append(kids, a.Code)
	}
	if strings.Join(kids, " ") != "001.00.01.H01 002.00.01.H01" {
		t.Fatalf("list --parent: %v", kids)
	}

	out, _ = run(true, "agency", "tree", "000.00.00.H01")
	want := "000.00.00.H01  UBND tỉnh 1\n" +
		"  000.00.01.H01  Sở Nội vụ\n" +
		"    001.00.01.H01  UBND huyện 1 [system dms-a] (deleted)\n" +
		"    002.00.01.H01  UBND huyện 2, tỉnh 1 [system dms-a]\n"
	if out != want {
		t.Fatalf("tree:\n%s\nwant\n%s", out, want)
	}
	if _, errOut := run(false, "agency", "tree", "000.00.00.H77"); !strings.Contains(errOut, "000.00.00.H77") {
		t.Fatalf("tree of an unknown code: %s", errOut)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func jsonNumber(v uint64) string { b, _ := json.Marshal(v); return string(b) }
