package backup_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/backup"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/signing"
	"github.com/docaxis/docaxis/signing/jws"
)

// writeSignedBackup backs up b signed with its audit key.
func writeSignedBackup(t *testing.T, b *bustest.Bus) (string, *audit.Key) {
	t.Helper()
	key, err := audit.OpenKey(filepath.Join(b.Keystore.Dir, "audit"), b.CA)
	if err != nil {
		t.Fatal(err)
	}
	return writeBackupWith(t, b, backup.Source{Signer: key.Signer, SignerChain: key.Chain}), key
}

func verifyFile(t *testing.T, path string) (*backup.Manifest, error) {
	t.Helper()
	f, err := backup.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return backup.Verify(f)
}

// resign replaces the manifest's signature with one by key over the
// (possibly edited) manifest, as someone holding key would.
func resign(t *testing.T, es []entry, key *signing.Identity) []entry {
	t.Helper()
	out := append([]entry(nil), es...)
	sum := sha256.Sum256(out[len(out)-1].data)
	p, _ := json.Marshal(map[string]string{"manifest_sha256": hex.EncodeToString(sum[:])})
	sig, err := jws.Sign(p, key.Key, key.Chain, jws.ContentType(backup.ManifestSignatureType))
	if err != nil {
		t.Fatal(err)
	}
	out[index(out, "manifest.jws")].data = sig
	return out
}

// TestSignedBackup: an archive signed by the bus's audit key restores
// under --ca of that bus; an unsigned one, one of another bus, one rebuilt
// after signing, one signed by a key that is not an audit key, and one
// that would restore another CA are refused before anything is written.
func TestSignedBackup(t *testing.T) {
	b, _, _ := busWithTraffic(t, 2)
	path, key := writeSignedBackup(t, b)
	m, err := verifyFile(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.SignedBy) == 0 || !bytes.Equal(m.SignedBy[0].Raw, key.Chain[0].Raw) {
		t.Fatalf("Verify: signed by %d certificates, want the audit key's", len(m.SignedBy))
	}
	if err := m.CheckSigner(b.CA.Cert); err != nil {
		t.Fatalf("CheckSigner with the bus's CA: %v", err)
	}
	home := filepath.Join(t.TempDir(), "home")
	if _, err := backup.Restore(ctxT(t), path, backup.Target{Home: home, TrustCA: b.CA.Cert}); err != nil {
		t.Fatalf("restore of a signed archive under its CA: %v", err)
	}

	other, err := signing.NewCA("another bus", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherAudit, err := audit.NewKey(other, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	agency, err := b.Keystore.Identity(sender)
	if err != nil {
		t.Fatal(err)
	}
	es := readEntries(t, path)
	caEntry := index(es, "home/ca/ca.crt")
	rebuilt := func(es []entry) []entry { // one stream's snapshot changed, manifest resealed
		es = append([]entry(nil), es...)
		snap := index(es, "streams/AXIS.snap")
		d := bytes.Clone(es[snap].data)
		d[len(d)/2] ^= 0xff
		es[snap].data = d
		return listed(es, es[snap])
	}
	otherCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Cert.Raw})
	for _, tc := range []struct {
		name string
		data []byte
		want error
		say  string
	}{
		{"unsigned", mustRead(t, writeBackup(t, b)), backup.ErrNotSigned, "no manifest signature"},
		{"rebuilt after signing", tarOf(rebuilt(es)), backup.ErrDamaged, "signature is of another manifest"},
		{"signature removed", tarOf(append(es[:index(es, "manifest.jws"):index(es, "manifest.jws")], es[len(es)-1])), backup.ErrDamaged, "no signature"},
		{"signed by another bus's audit key", tarOf(resign(t, rebuilt(es), &signing.Identity{Key: otherAudit.Signer, Chain: otherAudit.Chain})), backup.ErrUntrusted, "not issued by CA"},
		{"signed by an agency of the bus", tarOf(resign(t, rebuilt(es), agency)), backup.ErrUntrusted, "not by a bus's audit key"},
		{"another CA, signed by the audit key", tarOf(resign(t, listed(replace(es, caEntry, otherCA), entry{"home/ca/ca.crt", otherCA}), &signing.Identity{Key: key.Signer, Chain: key.Chain})), backup.ErrUntrusted, "would restore CA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.tar")
			if err := os.WriteFile(p, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			home := filepath.Join(t.TempDir(), "home")
			_, err := backup.Restore(ctxT(t), p, backup.Target{Home: home, TrustCA: b.CA.Cert})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.say) {
				t.Fatalf("restore: %v, want %v saying %q", err, tc.want, tc.say)
			}
			if !strings.Contains(err.Error(), "nothing was written") {
				t.Errorf("error %q does not say nothing was written", err)
			}
			if _, err := os.Stat(home); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("home %s was created: %v", home, err)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replace gives es with entry i's bytes replaced.
func replace(es []entry, i int, data []byte) []entry {
	out := append([]entry(nil), es...)
	out[i].data = data
	return out
}

// listed updates the manifest's line for e (size and SHA-256) and
// reseals it, as someone rebuilding an archive would.
func listed(es []entry, e entry) []entry {
	sum := sha256.Sum256(e.data)
	return editManifest(es, func(m map[string]any) {
		for _, x := range m["entries"].([]any) {
			if x := x.(map[string]any); x["name"] == e.name {
				x["sha256"] = hex.EncodeToString(sum[:])
				x["size"] = len(e.data)
			}
		}
	})
}
