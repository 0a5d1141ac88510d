package auth_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/docaxis/docaxis/broker/auth"
)

// TestAdmitLeafUndo: `federation member add` writes the link account
// before it lists the member and undoes it when the listing is refused.
// The undo revokes only the credentials just issued: a new member's
// account is closed again, an admitted member keeps the link it has and
// the file of its credentials.
func TestAdmitLeafUndo(t *testing.T) {
	dir := t.TempDir()
	a, err := auth.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	n, no := national(t, a)
	links, err := auth.LinksOf(n)
	if err != nil {
		t.Fatal(err)
	}
	keep := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		kept := path + ".kept"
		if err := os.WriteFile(kept, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return kept
	}

	// A new member whose listing is refused: no file, no link.
	hn := filepath.Join(dir, "hn", "uplink.creds")
	undo, err := a.AdmitLeaf("VN", "HN", hn)
	if err != nil {
		t.Fatal(err)
	}
	issued := keep(hn)
	if err := undo(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(hn); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the revoked credentials are still in %s: %v", hn, err)
	}
	if err := links.Sync(); err != nil {
		t.Fatal(err)
	}
	refused(t, n, no, issued, "credentials of a refused admission")

	// An admitted member, admitted again with a refused listing: the new
	// credentials are revoked, the earlier ones still link.
	dn := filepath.Join(dir, "dn", "uplink.creds")
	if err := a.LeafCreds("VN", "DN", dn); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(dn)
	undo, err = a.AdmitLeaf("VN", "DN", dn)
	if err != nil {
		t.Fatal(err)
	}
	issued = keep(dn)
	if err := undo(); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(dn); !bytes.Equal(after, before) {
		t.Fatal("the undo did not put back the credentials file it replaced")
	}
	if err := links.Sync(); err != nil {
		t.Fatal(err)
	}
	refused(t, n, no, issued, "credentials of a refused re-admission")
	if !a.HasLink("DN") {
		t.Fatal("the undo removed the link account of an admitted member")
	}
	first, log := leaf(t, no, dn)
	eventually(t, "the member links with the credentials it had", func() error {
		if !linked(t, n, first) {
			return fmt.Errorf("not linked: %v", log.lines)
		}
		return nil
	})
}
