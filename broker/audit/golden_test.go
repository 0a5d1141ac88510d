package audit_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/signing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/golden from the current code")

// TestGoldenCheckpoint holds Key.Sign to the bytes the checkpoint codec
// made before the JWS layer moved to signing/jws (testdata/golden, written
// by that code with -update): same header and payload (ES256 signatures
// are randomised), and the old checkpoint still verifies.
func TestGoldenCheckpoint(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	cp := audit.Checkpoint{Seq: 4711, Head: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Time: time.Date(2026, 12, 4, 20, 0, 0, 123000000, time.UTC), Reason: "interval"}
	if *updateGolden {
		ca, err := signing.NewCA("golden audit CA", 100*365*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		k, err := audit.NewKey(ca, 100*365*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := k.Sign(cp)
		if err != nil {
			t.Fatal(err)
		}
		if err := signing.SaveKeyPair(dir, k.Signer, k.Chain); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "checkpoint.jws"), sc.Raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key, chain, err := signing.LoadKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "checkpoint.jws"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := (&audit.Key{Signer: key, Chain: chain}).Sign(cp)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := got.Raw[:bytes.LastIndexByte(got.Raw, '.')], want[:bytes.LastIndexByte(want, '.')]; !bytes.Equal(g, w) {
		t.Errorf("signing input differs:\n got %s\nwant %s", g, w)
	}
	for name, raw := range map[string][]byte{"golden": want, "new": got.Raw} {
		sc, err := audit.VerifyCheckpoint(raw, chain[len(chain)-1:])
		if err != nil || sc.Checkpoint != cp {
			t.Errorf("VerifyCheckpoint(%s) = %+v, %v", name, sc, err)
		}
	}
}
