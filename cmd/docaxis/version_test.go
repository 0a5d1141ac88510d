package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestVersionEverywhere: the version the build stamps is what `docaxis
// version` prints, what /metrics exports as docaxis_build_info, and what
// the clerks' page shows in its footer.
func TestVersionEverywhere(t *testing.T) {
	const want = "v9.8.7-test"
	bin := filepath.Join(t.TempDir(), "docaxis")
	ld := "-X main.version=" + want + " -X main.commit=0123abcd -X main.buildDate=2026-01-02T03:04:05Z"
	if out, err := exec.Command("go", "build", "-ldflags", ld, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var bi BuildInfo
	if err := json.Unmarshal(out, &bi); err != nil {
		t.Fatalf("version --json: %v: %s", err, out)
	}
	if bi.Version != want || bi.Commit != "0123abcd" || bi.Date != "2026-01-02T03:04:05Z" || bi.Go != runtime.Version() {
		t.Errorf("version --json = %+v", bi)
	}
	if out, _ := exec.Command(bin, "version").Output(); !strings.Contains(string(out), "docaxis "+want) {
		t.Errorf("version prints %q", out)
	}

	home := filepath.Join(t.TempDir(), "home")
	metricsAddr, httpAddr := faultFreePort(t), faultFreePort(t)
	cfg := filepath.Join(t.TempDir(), "docaxis.yaml")
	text := fmt.Sprintf("home: %s\nlisten: %s\nhttp: %s\nmetrics: %s\nlog-level: warn\n", home, faultFreePort(t), httpAddr, metricsAddr)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	opsServe(t, bin, cfg)
	get := func(url string) string {
		t.Helper()
		c := &http.Client{Timeout: 30 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", url, resp.Status)
		}
		return string(b)
	}
	m := get("http://" + metricsAddr + "/metrics")
	gauge := fmt.Sprintf(`docaxis_build_info{commit="0123abcd",go="%s",version="%s"} 1`, runtime.Version(), want)
	if !strings.Contains(m, gauge) {
		t.Errorf("/metrics lacks %s", gauge)
	}
	if page := get("http://" + httpAddr + "/"); !strings.Contains(page, `<footer class="version">docaxis `+want+`</footer>`) {
		t.Errorf("the page's footer does not show %s", want)
	}
}

// TestImage builds the container image with `make image` and runs it
// where this machine can: buildah present and able to run a container.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the image build cross-compiles the binary")
	}
	if _, err := exec.LookPath("buildah"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("buildah is not installed: make deps installs it (Debian's buildah)")
		}
		t.Skip("buildah is not installed (make image installs it): image not built")
	}
	// Can this machine run a container at all? chroot isolation needs no
	// cgroups or user namespaces, which sandboxes often lack.
	probe, err := exec.Command("buildah", "from", "scratch").Output()
	if err != nil {
		t.Skipf("buildah cannot make a container here: %v", err)
	}
	_ = exec.Command("buildah", "rm", strings.TrimSpace(string(probe))).Run()

	const version = "imagetest"
	image := "localhost/docaxis-test"
	mk := exec.Command("make", "-C", "../..", "image", "IMAGE="+image, "VERSION="+version)
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("buildah", "rmi", image+":"+version, image+":latest").Run() })

	// The image: from scratch, one static binary, unprivileged, home on /data.
	out, err := exec.Command("buildah", "inspect", "--type", "image", image+":"+version).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		OCIv1 struct {
			Config struct {
				User       string
				Entrypoint []string
				Env        []string
				Volumes    map[string]struct{}
			} `json:"config"`
			RootFS struct {
				DiffIDs []string `json:"diff_ids"`
			} `json:"rootfs"`
		}
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	c := info.OCIv1.Config
	if c.User != "65532:65532" || strings.Join(c.Entrypoint, " ") != "/docaxis" || !strings.Contains(strings.Join(c.Env, " "), "DOCAXIS_HOME=/data") {
		t.Errorf("image config: %+v", c)
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Errorf("image has no /data volume: %+v", c.Volumes)
	}

	ctr, err := exec.Command("buildah", "from", image+":"+version).Output()
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimSpace(string(ctr))
	t.Cleanup(func() { _ = exec.Command("buildah", "rm", name).Run() })
	run := func(args ...string) ([]byte, error) {
		return exec.Command("buildah", append([]string{"run", "--isolation", "chroot", name, "--"}, args...)...).CombinedOutput()
	}
	out, err = run("/docaxis", "version", "--json")
	if err != nil {
		t.Skipf("this machine cannot run the image (buildah run: %v): %s", err, out)
	}
	var bi BuildInfo
	if err := json.Unmarshal(out, &bi); err != nil || bi.Version != version || bi.OS != "linux" {
		t.Errorf("version in the image: %+v %v: %s", bi, err, out)
	}
	// The unprivileged user can create a home on /data (CA, keys).
	if out, err := run("/docaxis", "--home", "/data", "--server", "nats://127.0.0.1:1", "agency", "list"); err == nil || !strings.Contains(string(out), "is 'docaxis serve' running") {
		t.Errorf("agency list in the image: %v: %s", err, out)
	}
}
