package broker_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/broker/record"
)

// nationalDirectory generates a directory in the shape of a national
// export: provinces → departments → districts → communes, parents before
// children as exports list them, the communes of province 1 served by
// system dms-p01 and the districts of province 2 by dms-p02.
func nationalDirectory(provinces, departments, districts, communes int) []broker.ImportLine {
	var lines []broker.ImportLine
	add := func(code, name, parent, system string) {
		fields := []string{"parent", "email"}
		if system != "" {
			fields = append(fields, "system")
		}
		lines = append(lines, broker.ImportLine{Line: len(lines) + 1, Fields: fields, Agency: broker.Agency{
			Code: code, Name: name, Parent: parent, System: system, Email: strings.ToLower(strings.ReplaceAll(code, ".", "")) + "@example.gov.vn"}})
	}
	for p := 1; p <= provinces; p++ {
		prov := fmt.Sprintf("000.00.00.H%02d", p)
		add(prov, fmt.Sprintf("UBND tỉnh %d", p), "", "")
		for d := 1; d <= departments; d++ {
			dep := fmt.Sprintf("000.00.%02d.H%02d", d, p)
			add(dep, fmt.Sprintf("Sở %d tỉnh %d", d, p), prov, "")
			for k := 1; k <= districts; k++ {
				dist := fmt.Sprintf("%03d.00.%02d.H%02d", k, d, p)
				sys := ""
				if p == 2 {
					sys = "dms-p02"
				}
				add(dist, fmt.Sprintf("Huyện %d.%d tỉnh %d", d, k, p), dep, sys)
				for c := 1; c <= communes; c++ {
					sys := ""
					if p == 1 {
						sys = "dms-p01"
					}
					add(fmt.Sprintf("%03d.%02d.%02d.H%02d", k, c, d, p), fmt.Sprintf("Xã %d.%d.%d tỉnh %d", d, k, c, p), dist, sys)
				}
			}
		}
	}
	return lines
}

// TestImportNationalDirectory imports 20,240 agencies (40 provinces, 5
// departments each, 10 districts each, 9 communes each), 480 of them in
// systems; imports it again (all unchanged); then updates, moves and
// deletes a few, and DirectoryChanges since the import's version returns
// exactly those.
func TestImportNationalDirectory(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	addSystem(t, bus, "dms-p01")
	addSystem(t, bus, "dms-p02")
	addSystem(t, bus, "dms-p03")
	c := bus.Service.Client
	ctx := ctxT(t)
	lines := nationalDirectory(40, 5, 10, 9)
	n := len(lines)

	start := time.Now()
	var progress []int
	res, err := c.ImportAgencies(ctx, lines, broker.ImportOptions{Bind: bus.CA.SignBinding, Progress: func(done, total int) {
		if total != n {
			t.Errorf("progress total %d, want %d", total, n)
		}
		progress = append(progress, done)
	}})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("imported %d agencies in %s (%.0f a second)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	if res.Added != n || res.Updated != 0 || res.Unchanged != 0 || len(res.Errors) != 0 {
		t.Fatalf("import: %+v, errors %v", res, res.Errors)
	}
	if len(progress) == 0 || progress[len(progress)-1] != n || !slices.IsSorted(progress) {
		t.Fatalf("progress reports %v", progress)
	}
	all, err := c.DirectoryChanges(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]int{}
	for _, a := range all.Agencies {
		served[a.System]++
	}
	if len(all.Agencies) != n || served["dms-p01"] != 450 || served["dms-p02"] != 50 || all.Version != res.Version {
		t.Fatalf("directory after import: %d agencies, served %v, version %d (import said %d)", len(all.Agencies), served, all.Version, res.Version)
	}
	// The hierarchy as imported.
	kids, err := c.Children(ctx, "000.00.03.H07")
	if err != nil || len(kids) != 10 || kids[0].Code != "001.00.03.H07" || kids[0].Parent != "000.00.03.H07" {
		t.Fatalf("children of 000.00.03.H07: %d %v", len(kids), err)
	}
	// The systems' mailboxes serve exactly their agencies.
	for id, want := range map[string]int{"dms-p01": 450, "dms-p02": 50} {
		cons, err := c.JetStream().Consumer(ctx, record.Stream, broker.SystemDurable(id))
		if err != nil {
			t.Fatal(err)
		}
		if got := len(cons.CachedInfo().Config.FilterSubjects); got != want {
			t.Errorf("mailbox of %s has %d filters, want %d", id, got, want)
		}
	}

	// Again: idempotent, nothing written.
	start = time.Now()
	again, err := c.ImportAgencies(ctx, lines, broker.ImportOptions{Bind: bus.CA.SignBinding})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("re-imported %d agencies in %s", n, time.Since(start).Round(time.Millisecond))
	if again.Unchanged != n || again.Added+again.Updated != 0 || len(again.Errors) != 0 || again.Version != res.Version {
		t.Fatalf("re-import: %+v (first version %d)", again, res.Version)
	}

	// Changes: a rename and a new email by import, a move between systems
	// and one out of a system, two deletions and a suspension.
	since := res.Version
	upd := []broker.ImportLine{
		{Line: 1, Agency: broker.Agency{Code: "000.00.00.H05", Name: "UBND tỉnh 5 (mới)"}},
		{Line: 2, Agency: broker.Agency{Code: "001.00.01.H06", Name: "Huyện 1.1 tỉnh 6", Email: "moi@example.gov.vn"}, Fields: []string{"email"}},
		{Line: 3, Agency: broker.Agency{Code: "001.01.01.H01", Name: "Xã 1.1.1 tỉnh 1", System: "dms-p03"}, Fields: []string{"system"}},
		{Line: 4, Agency: broker.Agency{Code: "002.00.01.H02", Name: "Huyện 1.2 tỉnh 2"}, Fields: []string{"system"}},
		{Line: 5, Agency: broker.Agency{Code: "000.00.00.H09", Name: "UBND tỉnh 9"}}, // unchanged
	}
	ur, err := c.ImportAgencies(ctx, upd, broker.ImportOptions{Bind: bus.CA.SignBinding})
	if err != nil || ur.Updated != 4 || ur.Unchanged != 1 || len(ur.Errors) != 0 {
		t.Fatalf("update import: %+v %v (errors %v)", ur, err, ur.Errors)
	}
	for code, state := range map[string]string{"009.09.05.H40": broker.StateDeleted, "001.00.05.H40": broker.StateDeleted, "003.03.03.H03": broker.StateSuspended} {
		a, err := c.LookupAgency(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		a.State = state
		if err := c.RegisterAgency(ctx, *a); err != nil {
			t.Fatal(err)
		}
	}
	start = time.Now()
	ch, err := c.DirectoryChanges(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("changes since version %d read in %s", since, time.Since(start).Round(time.Millisecond))
	want := map[string]func(a broker.Agency) bool{
		"000.00.00.H05": func(a broker.Agency) bool { return a.Name == "UBND tỉnh 5 (mới)" && a.Parent == "" },
		"001.00.01.H06": func(a broker.Agency) bool { return a.Email == "moi@example.gov.vn" && a.Parent == "000.00.01.H06" },
		"001.01.01.H01": func(a broker.Agency) bool { return a.System == "dms-p03" && len(a.Bindings) == 2 },
		"002.00.01.H02": func(a broker.Agency) bool { return a.System == "" && len(a.Bindings) == 2 },
		"009.09.05.H40": func(a broker.Agency) bool { return a.State == broker.StateDeleted && !a.Deleted.IsZero() },
		"001.00.05.H40": func(a broker.Agency) bool { return a.State == broker.StateDeleted && !a.Deleted.IsZero() },
		"003.03.03.H03": func(a broker.Agency) bool { return a.State == broker.StateSuspended },
	}
	if len(ch.Agencies) != len(want) {
		var codes []string
		for _, a := range ch.Agencies {
			codes = append(codes, a.Code)
		}
		t.Fatalf("changes since %d: %v, want %d", since, codes, len(want))
	}
	for _, a := range ch.Agencies {
		ok, known := want[a.Code]
		if !known || !ok(a) {
			t.Errorf("change %+v", a)
		}
		if a.Version <= since || a.Version > ch.Version {
			t.Errorf("change %s at version %d, not in (%d, %d]", a.Code, a.Version, since, ch.Version)
		}
	}
	if len(ch.Systems) != 0 {
		t.Errorf("systems changed: %+v", ch.Systems)
	}
	// Nothing since the latest.
	if none, err := c.DirectoryChanges(ctx, ch.Version); err != nil || len(none.Agencies) != 0 || none.Version != ch.Version {
		t.Fatalf("changes since %d: %+v %v", ch.Version, none, err)
	}
	// The moved agencies' mailboxes followed.
	for id, want := range map[string]int{"dms-p01": 449, "dms-p02": 49, "dms-p03": 1} {
		cons, err := c.JetStream().Consumer(ctx, record.Stream, broker.SystemDurable(id))
		if err != nil {
			t.Fatal(err)
		}
		cfg := cons.CachedInfo().Config
		got := len(cfg.FilterSubjects)
		if cfg.FilterSubject != "" {
			got = 1
		}
		if got != want {
			t.Errorf("mailbox of %s has %d filters, want %d", id, got, want)
		}
	}
}

// TestImportBadLines: each bad line is reported with its number and what
// is wrong; the lines below a bad one in the hierarchy are skipped too;
// nothing of a bad line is applied and the good lines are.
func TestImportBadLines(t *testing.T) {
	bus := bustest.Start(t, bustest.WithAuth())
	addSystem(t, bus, "dms-a")
	c := bus.Service.Client
	ctx := ctxT(t)
	base := []broker.ImportLine{
		{Line: 1, Agency: broker.Agency{Code: "000.00.00.H01", Name: "Tỉnh 1"}},
		{Line: 2, Agency: broker.Agency{Code: "000.00.01.H01", Name: "Sở 1", Parent: "000.00.00.H01", Email: "so1@example.gov.vn"}, Fields: []string{"parent", "email"}},
	}
	if res, err := c.ImportAgencies(ctx, base, broker.ImportOptions{Bind: bus.CA.SignBinding}); err != nil || res.Added != 2 {
		t.Fatalf("base: %+v %v", res, err)
	}
	before, err := c.DirectoryChanges(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	line := func(n int, code, name, parent, system string) broker.ImportLine {
		return broker.ImportLine{Line: n, Agency: broker.Agency{Code: code, Name: name, Parent: parent, System: system}, Fields: []string{"parent", "system"}}
	}
	lines := []broker.ImportLine{
		line(1, "000.00.02.H01", "Sở 2", "000.00.00.H01", ""),            // good
		line(2, "not a code", "Xấu", "", ""),                             // malformed code
		line(3, "000.00.02.H01", "Sở 2 lần hai", "000.00.00.H01", ""),    // duplicate of line 1
		line(4, "000.00.03.H01", "Sở 3", "000.00.00.H77", ""),            // unknown parent
		line(5, "001.00.03.H01", "Huyện dưới sở 3", "000.00.03.H01", ""), // below a bad line
		line(6, "000.00.04.H01", "Vòng A", "000.00.05.H01", ""),          // cycle A → B → A
		line(7, "000.00.05.H01", "Vòng B", "000.00.04.H01", ""),
		line(8, "000.00.06.H01", "Sở 6", "000.00.00.H01", "dms-none"),  // unknown system
		line(9, "000.00.07.H01", "", "000.00.00.H01", ""),              // no name
		line(10, "000.00.01.H01", "Sở 1 đổi tên", "000.00.01.H01", ""), // an update making itself its parent
		line(11, "000.00.00.H01", "Tỉnh 1", "000.00.01.H01", ""),       // an update closing a cycle through the directory
		line(12, "000.00.08.H01", "Sở 8", "000.00.00.H01", "dms-a"),    // good, in a system
	}
	res, err := c.ImportAgencies(ctx, lines, broker.ImportOptions{Bind: bus.CA.SignBinding})
	if err != nil {
		t.Fatal(err)
	}
	wantErr := map[int]string{2: "not a code", 3: "duplicate of line 1", 4: "000.00.00.H77", 5: "line 4",
		6: "was not imported (line 7)", 7: "(line 6) makes a cycle", 8: "dms-none", 9: "no name", 10: "own parent", 11: "cycle"}
	got := map[int]string{}
	for _, e := range res.Errors {
		if _, dup := got[e.Line]; dup {
			t.Errorf("line %d reported twice", e.Line)
		}
		got[e.Line] = e.Error()
		if !strings.Contains(e.Error(), fmt.Sprintf("line %d", e.Line)) {
			t.Errorf("error %q does not name its line", e)
		}
	}
	for n, frag := range wantErr {
		if msg, ok := got[n]; !ok || !strings.Contains(msg, frag) {
			t.Errorf("line %d: reported %q, want it to say %q", n, msg, frag)
		}
	}
	if len(got) != len(wantErr) {
		t.Errorf("errors %v", got)
	}
	if !errors.Is(errOf(res, 8), broker.ErrUnknownSystem) || !errors.Is(errOf(res, 4), broker.ErrInvalidEntry) {
		t.Errorf("errors are not the sentinels: %v / %v", errOf(res, 8), errOf(res, 4))
	}
	if res.Added != 2 || res.Updated != 0 {
		t.Errorf("result %+v", res)
	}
	ch, err := c.DirectoryChanges(ctx, before.Version)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, a := range ch.Agencies {
		codes = append(codes, a.Code)
	}
	if !slices.Equal(codes, []string{"000.00.02.H01", "000.00.08.H01"}) {
		t.Fatalf("applied %v, want only the good lines", codes)
	}
	// The entries a bad line would have updated are as they were.
	for _, code := range []string{"000.00.00.H01", "000.00.01.H01"} {
		a, err := c.LookupAgency(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		if a.Name != map[string]string{"000.00.00.H01": "Tỉnh 1", "000.00.01.H01": "Sở 1"}[code] || (code == "000.00.00.H01" && a.Parent != "") {
			t.Errorf("entry %s changed by a bad line: %+v", code, a)
		}
	}
}

func errOf(res *broker.ImportResult, line int) error {
	for _, e := range res.Errors {
		if e.Line == line {
			return e
		}
	}
	return nil
}
