package backup_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/docaxis/docaxis/broker/backup"
)

// TestManifestDamageIsRefused: the manifest holds what no entry's digest
// covers: each stream's configuration, which restore hands the server as
// is. One digit of the record's max_age changed (a bit flipped on the
// disk or on the way, the JSON still valid) would restore a record that
// drops every message older than the new age. Verify and restore must
// refuse it as damaged, like a byte changed in any entry.
func TestManifestDamageIsRefused(t *testing.T) {
	b, _, _ := busWithTraffic(t, 1)
	good := writeBackup(t, b)
	es := readEntries(t, good)
	last := len(es) - 1
	if es[last].name != "manifest.json" {
		t.Fatalf("last entry %s", es[last].name)
	}
	// The record's max_age, as the bus set it: "max_age": 315360000000000000.
	re := regexp.MustCompile(`"name": "AXIS",(?s:.*?)"max_age": ([1-9])`)
	loc := re.FindSubmatchIndex(es[last].data)
	if loc == nil {
		t.Fatalf("no max_age of the record in the manifest:\n%s", es[last].data)
	}
	d := bytes.Clone(es[last].data)
	d[loc[2]] ^= 0x02 // 3 becomes 1: a tenth-century record becomes a third of it
	es[last].data = d

	path := filepath.Join(t.TempDir(), "damaged.tar")
	if err := os.WriteFile(path, tarOf(es), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := backup.Verify(f); !errors.Is(err, backup.ErrDamaged) {
		t.Errorf("verify of a backup whose manifest changed the record's max_age (%c to %c): %v, want %v",
			es[last].data[loc[2]]^0x02, es[last].data[loc[2]], err, backup.ErrDamaged)
	}
	// The manifest's own digest renamed away: the header says it is
	// sealed, so its lack is damage too.
	es2 := readEntries(t, good)
	es2[last].data = bytes.Replace(es2[last].data, []byte(`"sha256"`), []byte(`"sha257"`), 1)
	if _, err := backup.Verify(bytes.NewReader(tarOf(es2))); !errors.Is(err, backup.ErrDamaged) {
		t.Errorf("verify of a backup whose manifest lost its digest: %v, want %v", err, backup.ErrDamaged)
	}
	home := filepath.Join(t.TempDir(), "home")
	if _, err := backup.Restore(ctxT(t), path, backup.Target{Home: home}); !errors.Is(err, backup.ErrDamaged) {
		t.Fatalf("restore of that backup: %v, want %v", err, backup.ErrDamaged)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("home %s was created: %v", home, err)
	}
}
