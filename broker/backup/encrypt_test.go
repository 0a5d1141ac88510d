package backup_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/docaxis/docaxis/broker/backup"
)

// TestEncryptedBackup: an archive encrypted to age recipients holds none
// of the home's keys in the clear, restores with any one recipient's
// identity, and is refused, with nothing written, without one, with
// another, changed, cut or lengthened.
func TestEncryptedBackup(t *testing.T) {
	b, _, _ := busWithTraffic(t, 2)
	ops, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	offsite, _ := age.GenerateX25519Identity()
	stranger, _ := age.GenerateX25519Identity()
	path := writeBackupTo(t, b, ops.Recipient(), offsite.Recipient())
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := os.ReadFile(filepath.Join(b.Dir, "home", "ca", "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n")) {
		t.Fatalf("the archive does not begin as an age file: %q", raw[:min(40, len(raw))])
	}
	for _, clear := range [][]byte{caKey, []byte("PRIVATE KEY"), []byte("docaxis-backup.json"), []byte("manifest.json")} {
		if bytes.Contains(raw, clear) {
			t.Fatalf("the encrypted archive holds %q in the clear", clear[:min(30, len(clear))])
		}
	}
	if enc, err := backup.IsEncrypted(path); err != nil || !enc {
		t.Fatalf("IsEncrypted = %v, %v", enc, err)
	}
	if enc, err := backup.IsEncrypted(writeBackup(t, b)); err != nil || enc {
		t.Fatalf("a plain archive: IsEncrypted = %v, %v", enc, err)
	}

	flipped := bytes.Clone(raw)
	flipped[len(flipped)/2] ^= 0x01
	for _, tc := range []struct {
		name string
		data []byte
		ids  []age.Identity
		want error
	}{
		{"no identity", raw, nil, backup.ErrEncrypted},
		{"another identity", raw, []age.Identity{stranger}, backup.ErrEncrypted},
		{"a byte changed", flipped, []age.Identity{ops}, backup.ErrDamaged},
		{"cut in half", raw[:len(raw)/2], []age.Identity{ops}, backup.ErrDamaged},
		{"cut at a chunk", raw[:len(raw)-(len(raw)-200)%(64*1024+16)], []age.Identity{ops}, nil},
		{"bytes after the end", append(bytes.Clone(raw), "more"...), []age.Identity{ops}, backup.ErrDamaged},
		{"header only", raw[:bytes.Index(raw, []byte("\n---"))+50], []age.Identity{ops}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.tar.age")
			if err := os.WriteFile(p, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			home := filepath.Join(t.TempDir(), "home")
			_, err := backup.Restore(ctxT(t), p, backup.Target{Home: home, Identities: tc.ids})
			switch {
			case err == nil:
				t.Fatal("restored")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("restore: %v, want %v", err, tc.want)
			case tc.want == nil && !errors.Is(err, backup.ErrDamaged) && !errors.Is(err, backup.ErrTruncated):
				t.Fatalf("restore: %v, want damaged or incomplete", err)
			}
			if !strings.Contains(err.Error(), "nothing was written") {
				t.Errorf("error %q does not say nothing was written", err)
			}
			if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("home %s was created: %v", home, err)
			}
		})
	}

	// Either recipient's identity restores it, the keys byte for byte.
	home := filepath.Join(t.TempDir(), "home")
	m, err := backup.Restore(ctxT(t), path, backup.Target{Home: home, Identities: []age.Identity{stranger, offsite}})
	if err != nil {
		t.Fatal(err)
	}
	if m.RecordSeq == 0 {
		t.Fatalf("restored manifest: record seq %d", m.RecordSeq)
	}
	got, err := os.ReadFile(filepath.Join(home, "ca", "ca.key"))
	if err != nil || !bytes.Equal(got, caKey) {
		t.Fatalf("restored CA key differs: %v", err)
	}
	startRestored(t, home)
}

// FuzzOpenEncrypted: bytes that begin as an age file never make Open or
// Verify panic, and fail only as encrypted, damaged or incomplete.
func FuzzOpenEncrypted(f *testing.F) {
	id, err := age.ParseX25519Identity("AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX")
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, id.Recipient())
	if err != nil {
		f.Fatal(err)
	}
	w.Write(tarOf([]entry{{"docaxis-backup.json", []byte(`{"format":1}`)}}))
	w.Close()
	f.Add(buf.Bytes())
	f.Add([]byte("age-encryption.org/v1\n-> X25519 abc\n--- def\n"))
	f.Add([]byte("age-encryption.org/v1\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if !bytes.HasPrefix(data, []byte("age-encryption.org/v1\n")) {
			data = append([]byte("age-encryption.org/v1\n"), data...)
		}
		p := filepath.Join(dir, "fuzz.age")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := backup.Open(p, id)
		if err == nil {
			_, err = backup.Verify(r)
			r.Close()
		}
		if err == nil {
			t.Fatal("accepted")
		}
		if !errors.Is(err, backup.ErrEncrypted) && !errors.Is(err, backup.ErrDamaged) && !errors.Is(err, backup.ErrTruncated) {
			t.Fatalf("error outside the classes: %v", err)
		}
	})
}
