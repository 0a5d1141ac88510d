package backup_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/docaxis/docaxis/broker/backup"
)

// TestRestoreRefusesAnArchiveCutWhileRestored: restore verifies the
// archive whole, then reads it again to write the home, checking each
// entry's bytes once more since the file may change in between. An
// archive cut short in between (its streams replaced by the end of the
// tar, by someone who may write where it lies) must not restore as a
// home with its keys and no record: the entries the manifest lists and
// the second reading lacked are damage, and what was written is removed.
func TestRestoreRefusesAnArchiveCutWhileRestored(t *testing.T) {
	b, _, _ := busWithTraffic(t, 1)
	path := writeBackup(t, b)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The streams after the record's: the directory, attachment access,
	// tokens, the attachments.
	rec := bytes.Index(raw, []byte("streams/AXIS.snap\x00"))
	next := bytes.Index(raw[rec+1:], []byte("streams/"))
	at := rec + 1 + next
	if rec <= 0 || rec%512 != 0 || next < 0 || at%512 != 0 {
		t.Fatalf("no header of a stream after the record's found (record at %d, next at %d)", rec, at)
	}
	cut := false
	home := filepath.Join(t.TempDir(), "home")
	_, err = backup.Restore(ctxT(t), path, backup.Target{Home: home, Progress: func(done, total int64) {
		if cut {
			return
		}
		cut = true
		// Verified a moment ago; now the streams are gone.
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		if _, err := f.WriteAt(make([]byte, 1024), int64(at)); err != nil {
			t.Error(err)
		}
	}})
	if !cut {
		t.Fatal("restore reported no progress")
	}
	if !errors.Is(err, backup.ErrTruncated) {
		t.Fatalf("restore of an archive whose streams after the record were cut off while it was restored: %v, want %v", err, backup.ErrTruncated)
	}
	if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("home %s left behind: %v", home, err)
	}
}
