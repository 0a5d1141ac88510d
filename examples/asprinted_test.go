// Package examples_test runs every example the way its header comment
// prints it, against `docaxis serve` started as `make run` starts it.
package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"github.com/docaxis/docaxis/internal/freeport"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// order is the order a new user follows: the publisher's header
// registers the agencies and sends; the others act on what it sent.
var order = []string{"dms-publisher", "dms-subscriber", "clerk-tracker", "auditor-replay"}

// printedCommands returns the shell commands of a file's header comment:
// its tab-indented lines, with backslash continuations joined.
func printedCommands(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	cont := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "package ") {
			break
		}
		code, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			cont = false
			continue
		}
		code = strings.TrimSpace(code)
		if cont {
			cmds[len(cmds)-1] += " " + strings.TrimSuffix(code, "\\")
		} else {
			cmds = append(cmds, strings.TrimSuffix(code, "\\"))
		}
		cont = strings.HasSuffix(code, "\\")
	}
	if len(cmds) == 0 {
		t.Fatalf("%s: no command in its header comment", path)
	}
	return cmds
}

func freePort(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestExamplesAsPrinted(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the binary and every example")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	build := func(out, pkg string) {
		if b, err := exec.Command("go", "build", "-o", filepath.Join(bin, out), pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	build("docaxis", "../cmd/docaxis")
	for _, ex := range order {
		build(ex, "./"+ex)
	}
	// The repository root as the user has it: README.md to attach, the
	// home .docaxis made by serve.
	work := filepath.Join(tmp, "repo")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "README.md"), readme, 0o644); err != nil {
		t.Fatal(err)
	}
	// Free ports instead of 4222 and 8080 (other buses may run here),
	// given the way an operator would: DOCAXIS_* variables.
	natsAddr := freePort(t)
	env := []string{"DOCAXIS_LISTEN=" + natsAddr, "DOCAXIS_HTTP=" + freePort(t), "DOCAXIS_SERVER=nats://" + natsAddr,
		"DOCAXIS_HOME=", "DOCAXIS_CREDS=", "DOCAXIS_CONFIG="}
	env = append(os.Environ(), env...)

	// make run: $(BIN)/docaxis serve
	serve := exec.Command(filepath.Join(bin, "docaxis"), "serve")
	serve.Dir, serve.Env = work, env
	serve.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := serve.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	var mu sync.Mutex
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		var once sync.Once
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.HasPrefix(sc.Text(), "docaxis serving on") {
				once.Do(func() { close(ready) })
			}
		}
		_ = serve.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = serve.Process.Signal(syscall.SIGTERM)
		<-done
	})
	select {
	case <-ready:
	case <-done:
		t.Fatalf("docaxis serve exited: %s", log.String())
	case <-time.After(time.Minute):
		t.Fatalf("docaxis serve not ready: %s", log.String())
	}

	outputs := map[string]string{}
	for _, ex := range order {
		for _, cmd := range printedCommands(t, filepath.Join(ex, "main.go")) {
			line := cmd
			switch {
			case strings.HasPrefix(cmd, "bin/docaxis "):
				line = filepath.Join(bin, "docaxis") + strings.TrimPrefix(cmd, "bin/docaxis")
			case strings.HasPrefix(cmd, "go run ./examples/"+ex+" "):
				line = filepath.Join(bin, ex) + strings.TrimPrefix(cmd, "go run ./examples/"+ex)
			default:
				t.Fatalf("%s: printed command %q is neither bin/docaxis nor go run ./examples/%s", ex, cmd, ex)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			c := exec.CommandContext(ctx, "sh", "-c", line)
			c.Dir, c.Env = work, env
			out, err := c.CombinedOutput()
			cancel()
			if err != nil {
				t.Fatalf("%s: %s\n%v\n%s", ex, cmd, err, out)
			}
			outputs[ex] += string(out)
			t.Logf("$ %s\n%s", cmd, out)
		}
	}
	for ex, want := range map[string]string{
		"dms-publisher":  " to 000.00.00.H41",
		"dms-subscriber": "README.md",
		"clerk-tracker":  "000.00.00.H41",
		"auditor-replay": "bundle verifies offline",
	} {
		if !strings.Contains(outputs[ex], want) {
			t.Errorf("%s printed no %q:\n%s", ex, want, outputs[ex])
		}
	}
}
