package main

import (
	"os"
	"os/exec"
	"testing"
)

// A reader that leaves early (`docaxis agency list --json | grep -q CODE`
// under `set -o pipefail`) does not fail the command: it exits 0 instead
// of dying of SIGPIPE, whenever the reader left.
func TestStdoutReaderGone(t *testing.T) {
	bin := faultBinary(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the reader is gone before the first write
	cmd := exec.Command(bin, "version")
	cmd.Stdout = w
	err = cmd.Run()
	w.Close()
	if err != nil {
		t.Fatalf("docaxis version with its reader gone: %v (want exit 0)", err)
	}
}
