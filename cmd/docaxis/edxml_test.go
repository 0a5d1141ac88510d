package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/envelope"
	"github.com/docaxis/docaxis/envelope/edxml"
)

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// cliBinary builds the docaxis binary once per test run.
func cliBinary(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "docaxis-cli-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "docaxis")
		if out, err := exec.Command("go", "build", "-o", cliPath, ".").CombinedOutput(); err != nil {
			cliErr = err
			t.Logf("go build: %s", out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// cli runs the binary against bus with its home; it fails the test on a
// non-zero exit unless allowFail.
func cli(t *testing.T, bus *bustest.Bus, args ...string) string {
	t.Helper()
	cmd := exec.Command(cliBinary(t), append([]string{"--home", bus.Keystore.Dir, "--server", bus.URL()}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("docaxis %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// A real edXML document sent through the bus comes out of `edxml export`
// on the recipient's side with the same header values, and its status
// replies go back as edXML statuses.
func TestEdXMLThroughTheBus(t *testing.T) {
	sample := filepath.Join("..", "..", "..", "shared", "testdata", "edxml", "edoc.edxml")
	if _, err := os.Stat(sample); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("edXML samples missing: %v", err)
		}
		t.Skipf("edXML samples missing: %v", err)
	}
	bus := bustest.Start(t)
	bus.AddAgency("002.00.20.H13", "Sở Nội vụ")
	bus.AddAgency("000.00.15.H51", "UBND tỉnh")
	id := lastLine(cli(t, bus, "edxml", "send", "--as", "002.00.20.H13", sample))
	inbox := cli(t, bus, "inbox", "--as", "000.00.15.H51", "--json", "--wait", "2s")
	if !strings.Contains(inbox, id) || !strings.Contains(inbox, `"verified":true`) || !strings.Contains(inbox, "original.edxml") {
		t.Fatalf("inbox: %s", inbox)
	}
	out := filepath.Join(t.TempDir(), "out.edxml")
	if err := os.WriteFile(out, []byte(cli(t, bus, "edxml", "export", id)), 0o644); err != nil {
		t.Fatal(err)
	}
	headers := func(path string) map[string]any {
		var imp struct {
			Envelope map[string]any `json:"envelope"`
		}
		if err := json.Unmarshal([]byte(cli(t, bus, "edxml", "import", "--json", path)), &imp); err != nil {
			t.Fatal(err)
		}
		e := imp.Envelope
		// The id, the bus's signing time and the attachment list are the
		// bus's own; every header value of the file must survive.
		delete(e, "id")
		delete(e, "created")
		delete(e, "attachments")
		if x, ok := e["extra"].(map[string]any); ok {
			delete(x, "edxml.attachments") // the placeholder attachment travels inside original.edxml
		}
		return e
	}
	a, b := headers(sample), headers(out)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("headers differ after the round trip\nsent:     %s\nexported: %s", ja, jb)
	}

	// Status files from the recipient's own edXML system set the states,
	// naming the document by its edXML DocumentId.
	docID, _ := a["document"].(map[string]any)["document_id"].(string)
	if docID == "" {
		t.Fatal("sample has no DocumentId")
	}
	for _, code := range []envelope.State{envelope.StateAccepted, envelope.StateProcessing} {
		st := envelope.NewStatus("000.00.15.H51", "002.00.20.H13", id, code)
		st.Status.Note = "Từ hệ thống QLVB"
		st.Extra = map[string]string{edxml.KeyResponseForDocumentID: docID}
		var buf bytes.Buffer
		if err := edxml.Write(&buf, st, nil); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "status.edxml")
		if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		cli(t, bus, "edxml", "send", "--as", "000.00.15.H51", file)
	}
	var ds struct {
		Recipients []struct {
			State string `json:"state"`
		} `json:"recipients"`
	}
	if err := json.Unmarshal([]byte(cli(t, bus, "status", id, "--json")), &ds); err != nil || ds.Recipients[0].State != "processing" {
		t.Fatalf("after the status files: %+v %v", ds, err)
	}
	cli(t, bus, "mark", "--as", "000.00.15.H51", id, "06", "--note", "Đã xong", "--staff", "Nguyễn Văn B", "--department", "Văn thư")
	dir := t.TempDir()
	cli(t, bus, "edxml", "export", id, "--status", "--out", dir)
	files, _ := filepath.Glob(filepath.Join(dir, "*.edxml"))
	codes := map[string]bool{}
	for _, f := range files {
		var imp struct {
			Kind     string `json:"kind"`
			Envelope struct {
				From   string `json:"from"`
				Status struct {
					State string `json:"state"`
					Note  string `json:"note"`
				} `json:"status"`
			} `json:"envelope"`
		}
		if err := json.Unmarshal([]byte(cli(t, bus, "edxml", "import", "--json", f)), &imp); err != nil {
			t.Fatal(err)
		}
		if imp.Kind != "status" || imp.Envelope.From != "000.00.15.H51" {
			t.Fatalf("%s: %+v", f, imp)
		}
		codes[imp.Envelope.Status.State] = true
		if imp.Envelope.Status.State == "done" && imp.Envelope.Status.Note != "Đã xong" {
			t.Fatalf("note %q", imp.Envelope.Status.Note)
		}
	}
	if !codes["delivered"] || !codes["accepted"] || !codes["processing"] || !codes["done"] {
		t.Fatalf("exported statuses %v from %v", codes, files)
	}
}
