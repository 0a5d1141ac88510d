package main

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/audit"
	"github.com/docaxis/docaxis/broker/audit/audittest"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
)

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	auditFlags = struct {
		since, until, agency string
		json                 bool
		attachments          bool
		out                  string
		ca                   string
		requireCheckpoint    bool
		noChain              bool
	}{}
	// Zero: the defaults (cobra only sets the flags given).
	auditLimits = audit.VerifyLimits{}
	var out, errb bytes.Buffer
	rootCmd.SetOut(&out)
	rootCmd.SetErr(&errb)
	rootCmd.SetArgs(args)
	// cobra keeps the first context a subcommand ran with: use one that
	// outlives the test's runs.
	err := rootCmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestAuditCommands(t *testing.T) {
	bus := bustest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	key, err := audit.OpenKey(filepath.Join(bus.Keystore.Dir, "audit"), bus.CA)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := audit.StartChainer(ctx, bus.Service.Client.JetStream(), audit.ChainerConfig{Key: key, Logger: bustest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Stop(context.Background())
	bus.AddAgency("000.00.00.G22", "Văn phòng Chính phủ")
	bus.AddAgency("000.00.00.H41", "UBND tỉnh Nghệ An")
	c := bus.Client()
	for range 3 {
		if _, err := c.Send(ctx, envelope.New("000.00.00.G22", []string{"000.00.00.H41"}, "Công văn")); err != nil {
			t.Fatal(err)
		}
	}
	global := []string{"--home", bus.Keystore.Dir, "--server", bus.URL()}

	// The chainer links records a moment after they are stored.
	var lines []string
	var rec audit.Record
	for try := 0; ; try++ {
		out, _, err := runCLI(t, append([]string{"audit", "replay", "--since", "1h", "--json"}, global...)...)
		if err != nil {
			t.Fatal(err)
		}
		lines = strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 {
			t.Fatalf("replay printed %d lines:\n%s", len(lines), out)
		}
		rec = audit.Record{}
		err = json.Unmarshal([]byte(lines[0]), &rec)
		if err == nil && rec.Chain == audit.ChainPending && try < 50 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil || !rec.Verified || rec.Chain != audit.ChainLinked {
			t.Fatalf("first record %s: %v", lines[0], err)
		}
		break
	}

	bundle := filepath.Join(t.TempDir(), "b.zip")
	if out, errOut, err := runCLI(t, append([]string{"audit", "export", "--since", "2020-01-01", "--out", bundle}, global...)...); err != nil || !strings.Contains(out, "covered by a signed checkpoint") {
		t.Fatalf("export: %v\n%s%s", err, out, errOut)
	}
	if out, _, err := runCLI(t, "audit", "verify", bundle); err != nil || !strings.Contains(out, "OK: the bundle verifies") {
		t.Fatalf("verify: %v\n%s", err, out)
	}

	// One byte of record 2 changed: exit status 1, naming seq 2.
	bad := filepath.Join(t.TempDir(), "bad.zip")
	rewriteZip(t, bundle, bad, audit.RecordFile(2))
	out, _, err := runCLI(t, "audit", "verify", bad)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "record seq 2") {
		t.Fatalf("verify of a tampered bundle: %v\n%s", err, out)
	}

	// Limits: an honest bundle over a tight one is refused naming the file
	// and the flag; raised, it verifies.
	_, _, err = runCLI(t, "audit", "verify", "--max-entry-size", "100", bundle)
	var le *audit.LimitError
	if !errors.As(err, &le) || le.Entry == "" || !strings.Contains(err.Error(), "--max-entry-size") {
		t.Fatalf("verify over --max-entry-size: %v", err)
	}
	if out, _, err := runCLI(t, "audit", "verify", "--max-entries", "-1", "--max-ratio", "-1", bundle); err != nil || !strings.Contains(out, "OK: the bundle verifies") {
		t.Fatalf("verify with lifted limits: %v\n%s", err, out)
	}
	// A zip bomb is refused before it is decompressed.
	bomb := filepath.Join(t.TempDir(), "bomb.zip")
	writeBomb(t, bomb)
	if _, _, err := runCLI(t, "audit", "verify", bomb); !errors.As(err, &le) || le.Entry != audit.ManifestFile || le.Limit != "EntrySize" {
		t.Fatalf("verify of a zip bomb: %v", err)
	}

	// Record 2 cut from the bus's record with its link: replay exits 1,
	// naming the break, though every record left verifies.
	if _, err := ch.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := audittest.CutRecord(ctx, bus.Service.Client.JetStream(), 2); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI(t, append([]string{"audit", "replay", "--since", "1h"}, global...)...)
	if !errors.As(err, &ee) || ee.code != 1 || !errors.Is(err, audit.ErrChainBroken) || !strings.Contains(err.Error(), "between seq 1 and seq 3") {
		t.Fatalf("replay over a cut record: %v\n%s%s", err, out, errOut)
	}
	t.Log(err)
}

// writeBomb writes a zip whose manifest.json declares a GiB of zeros in a
// megabyte (the data is a deflate stream of one block repeated).
func writeBomb(t *testing.T, path string) {
	t.Helper()
	var blk bytes.Buffer
	fw, _ := flate.NewWriter(&blk, flate.BestCompression)
	fw.Write(make([]byte, 1<<20))
	fw.Flush()
	raw := append(bytes.Repeat(blk.Bytes(), 1024), 0x03, 0x00)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: audit.ManifestFile, Method: zip.Deflate, CompressedSize64: uint64(len(raw)), UncompressedSize64: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(raw)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// rewriteZip copies src to dst with one byte of file name flipped.
func rewriteZip(t *testing.T, src, dst, name string) {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, e := range zr.File {
		rc, _ := e.Open()
		d, _ := io.ReadAll(rc)
		rc.Close()
		if e.Name == name {
			d[len(d)/3] ^= 1
		}
		w, _ := zw.Create(e.Name)
		w.Write(d)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}
