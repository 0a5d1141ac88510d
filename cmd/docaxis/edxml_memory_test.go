package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope/edxml/edxmltest"
)

// cliRSS runs the binary like cli and returns its output and its peak
// resident memory (what the system gave the process, Go runtime included).
func cliRSS(t *testing.T, bus *bustest.Bus, args ...string) (string, int64) {
	t.Helper()
	cmd := exec.Command(cliBinary(t), append([]string{"--home", bus.Keystore.Dir, "--server", bus.URL()}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("docaxis %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Skip("no resource usage on this system")
	}
	return out.String(), ru.Maxrss << 10 // kilobytes on Linux
}

// TestEdXMLMemory: `edxml import`, `edxml send` and `edxml export` of a
// file with a 50 MB attachment stay well under 3x the file's size in
// memory (before the parser read text in pieces, import and send took
// 280 MB for this 66 MB file).
func TestEdXMLMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("sends a file of 66 MB")
	}
	bus := bustest.Start(t)
	bus.AddAgency("000.00.00.G22", "Văn phòng Chính phủ")
	bus.AddAgency("000.00.00.H41", "UBND tỉnh Nghệ An")
	path, size := edxmltest.WriteLarge(t, t.TempDir(), edxmltest.LargeOptions{From: "000.00.00.G22", To: "000.00.00.H41", Size: 50 << 20})
	_, base := cliRSS(t, bus, "agency", "list") // the process with nothing to carry
	_, imp := cliRSS(t, bus, "edxml", "import", path)
	out, send := cliRSS(t, bus, "edxml", "send", "--as", "000.00.00.G22", path)
	dir := t.TempDir()
	_, exp := cliRSS(t, bus, "edxml", "export", lastLine(out), "--out", dir)
	t.Logf("file of %d MB: peak RSS agency list %d MB, edxml import %d MB, send %d MB, export %d MB", size>>20, base>>20, imp>>20, send>>20, exp>>20)
	for what, rss := range map[string]int64{"import": imp, "send": send} {
		if rss-base > size/4 {
			t.Errorf("edxml %s: %d MB resident, %d MB more than a command with nothing to carry, for a file of %d MB", what, rss>>20, (rss-base)>>20, size>>20)
		}
	}
	// Export reads from the object store, which the server pushes up to
	// 64 MB ahead (flow control): at most the attachment's size here.
	if exp-base > size {
		t.Errorf("edxml export: %d MB resident, %d MB more than a command with nothing to carry, for a file of %d MB", exp>>20, (exp-base)>>20, size>>20)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.edxml")); len(files) != 1 {
		t.Errorf("export wrote %q", files)
	}
}
