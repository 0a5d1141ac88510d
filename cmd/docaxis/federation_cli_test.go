package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker/bustest"
)

// fedServe is one bus of a federation run as `docaxis serve` runs it, with
// the flags of the README's federation section (faultServe.extra).
type fedServe struct{ *faultServe }

func newFedServe(t *testing.T, bin, home string, flags ...string) *fedServe {
	s := &fedServe{&faultServe{t: t, bin: bin, home: home, listen: faultFreePort(t), extra: flags}}
	s.start()
	t.Cleanup(s.kill)
	return s
}

// cli runs a client command against this bus; it returns what the command
// printed (standard error included) and whether it exited 0.
func (s *fedServe) cli(args ...string) (string, bool) {
	cmd := exec.Command(s.bin, append([]string{"--home", s.home, "--server", s.url()}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func (s *fedServe) mustCLI(args ...string) string {
	s.t.Helper()
	out, ok := s.cli(args...)
	if !ok {
		s.t.Fatalf("docaxis %s on %s: %s", strings.Join(args, " "), s.home, out)
	}
	return out
}

// eventuallyCLI runs the command until it succeeds (the federation's
// directory reaches every bus within seconds), failing after d.
func (s *fedServe) eventuallyCLI(d time.Duration, args ...string) string {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		out, ok := s.cli(args...)
		if ok {
			return out
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("docaxis %s on %s still failing after %s: %s", strings.Join(args, " "), s.home, d, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestFederationCLI runs the README's federation procedure with three
// `docaxis serve` processes (a national and two members) and the stock
// CLI, then attacks from one member's operator with that bus's own CLI:
// claiming and revoking codes of other buses. It ends with the removal of
// that member: senders get a clear error, the history stays on record.
func TestFederationCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("three serve processes")
	}
	bin := cliBinary(t)
	dir := t.TempDir()
	leaf := faultFreePort(t)
	vn := newFedServe(t, bin, filepath.Join(dir, "vn"), "--bus-id", "VN", "--leaf-listen", leaf)

	// Each member prints its CA for the national operator.
	for _, m := range []string{"hn", "qn"} {
		out, err := exec.Command(bin, "--home", filepath.Join(dir, m), "federation", "ca", "--bus-id", strings.ToUpper(m)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SHA-256") {
			t.Fatalf("federation ca on %s: %v: %s", m, err, out)
		}
	}
	vn.mustCLI("federation", "member", "bind", "VN", "--codes", "*.*.*.G*")
	vn.mustCLI("federation", "member", "add", "HN", "--ca", filepath.Join(dir, "hn", "ca", "ca.crt"), "--codes", "*.*.*.H1*")
	vn.mustCLI("federation", "member", "add", "QN", "--ca", filepath.Join(dir, "qn", "ca", "ca.crt"), "--codes", "*.*.*.H4*")

	creds := func(m string) string { return filepath.Join(vn.home, "federation", "members", m, "uplink.creds") }
	hn := newFedServe(t, bin, filepath.Join(dir, "hn"), "--bus-id", "HN", "--uplink", "nats-leaf://"+leaf, "--uplink-creds", creds("HN"))
	qn := newFedServe(t, bin, filepath.Join(dir, "qn"), "--bus-id", "QN", "--uplink", "nats-leaf://"+leaf, "--uplink-creds", creds("QN"))

	vn.mustCLI("agency", "add", "000.00.00.G22", "--name", "Văn phòng Chính phủ")
	hn.mustCLI("agency", "add", "000.00.00.H14", "--name", "UBND Hà Nội")
	qn.mustCLI("agency", "add", "000.00.00.H41", "--name", "UBND Quảng Ninh")

	// QN's operator, with QN's own CLI, against codes it does not serve,
	// once QN has learned the federation's bindings (before, the national
	// refuses its claims and settles them by the bindings later).
	deadline := time.Now().Add(time.Minute)
	for {
		out, _ := qn.cli("federation", "member", "list")
		if strings.Contains(out, "*.*.*.H1*") && strings.Contains(out, "*.*.*.G*") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("QN has not learned the bindings: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	attacks := []struct {
		name string
		args []string
		want string
	}{
		{"squat a code bound to HN", []string{"agency", "add", "000.05.00.H14", "--name", "squatter"}, "bound to bus HN"},
		{"squat the national's code", []string{"agency", "add", "000.00.00.G23", "--name", "squatter"}, "bound to bus VN"},
		{"revoke HN's agency", []string{"agency", "revoke", "000.00.00.H14"}, "only bus HN can revoke"},
		{"revoke the national's agency since January", []string{"agency", "revoke", "000.00.00.G22", "--at", "2026-01-01T00:00:00Z"}, "only bus VN can revoke"},
	}
	for _, a := range attacks {
		out := qn.eventuallyFail(a.args...)
		if !strings.Contains(out, a.want) {
			t.Errorf("%s: refused with %q, want it to say %q", a.name, out, a.want)
		}
	}
	// A bulk import goes through the same check: the line of HN's code is
	// reported, QN's own is registered.
	csv := filepath.Join(dir, "units.csv")
	if err := os.WriteFile(csv, []byte("code,name,parent,old_code,email,system\n000.07.00.H14,squatter,,,,\n000.01.00.H41,Sở Nội vụ,000.00.00.H41,,,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := qn.cli("agency", "import", csv)
	if !strings.Contains(out, "line 2") || !strings.Contains(out, "bound to bus HN") {
		t.Errorf("import of a line with HN's code: %s", out)
	}
	list := qn.mustCLI("agency", "list", "--json")
	if strings.Contains(list, "000.07.00.H14") || !strings.Contains(list, "000.01.00.H41") {
		t.Errorf("QN's directory after the import: %s", list)
	}

	// Mail crosses the buses: the victims' agencies still sign and verify.
	file := filepath.Join(dir, "cong-van.txt")
	if err := os.WriteFile(file, []byte("nội dung công văn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	id1 := sendID(t, vn.eventuallyCLI(time.Minute, "send", "--as", "000.00.00.G22", "--to", "000.00.00.H14", "--subject", "công văn 1", "--file", file, "--json"))
	id2 := sendID(t, qn.eventuallyCLI(time.Minute, "send", "--as", "000.00.00.H41", "--to", "000.00.00.H14", "--subject", "từ Quảng Ninh", "--json"))
	id3 := sendID(t, hn.eventuallyCLI(time.Minute, "send", "--as", "000.00.00.H14", "--to", "000.00.00.G22", "--subject", "trả lời", "--json"))

	save := filepath.Join(dir, "saved")
	got := map[string]bool{}
	deadline = time.Now().Add(90 * time.Second)
	for !(got[id1] && got[id2]) && time.Now().Before(deadline) {
		for _, line := range strings.Split(hn.mustCLI("inbox", "--as", "000.00.00.H14", "--json", "--save", save, "--wait", "3s"), "\n") {
			var d struct {
				ID string `json:"id"`
			}
			if json.Unmarshal([]byte(line), &d) == nil && d.ID != "" {
				got[d.ID] = true
			}
		}
	}
	if !got[id1] || !got[id2] {
		t.Fatalf("H14 received %v, want %s and %s", got, id1, id2)
	}
	if b, err := os.ReadFile(filepath.Join(save, id1, "cong-van.txt")); err != nil || string(b) != "nội dung công văn\n" {
		t.Fatalf("attachment from the national: %q, %v", b, err)
	}
	if out := vn.mustCLI("inbox", "--as", "000.00.00.G22", "--json", "--wait", "10s", "--max", "1"); !strings.Contains(out, id3) {
		t.Fatalf("G22 did not receive H14's answer %s: %s", id3, out)
	}
	waitState := func(s *fedServe, id, state string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			out, _ := s.cli("status", id)
			if strings.Contains(out, state) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("status %s on %s: %s, want %s", id, s.home, out, state)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	waitState(vn, id1, "delivered")
	waitState(qn, id2, "delivered")

	// The national removes QN.
	out = vn.mustCLI("federation", "member", "remove", "QN")
	if !strings.Contains(out, "link credentials revoked: true") || !strings.Contains(out, "000.00.00.H41") {
		t.Fatalf("member remove: %s", out)
	}
	out = hn.eventuallyFail("send", "--as", "000.00.00.H14", "--to", "000.00.00.H41", "--subject", "to a removed bus")
	if !strings.Contains(out, "withdrawn from the federation") || !strings.Contains(out, "QN") {
		t.Fatalf("send to a removed bus's agency: %s", out)
	}
	bustest.Eventually(t, 30*time.Second, "QN not told it was removed", func() error {
		if text := qn.logText(); !strings.Contains(text, "this bus was removed from the federation") {
			return errors.New(text)
		}
		return nil
	})
	status := vn.mustCLI("federation", "status", "--json")
	var st struct {
		Links []struct {
			Peer  string `json:"peer"`
			State string `json:"state"`
		} `json:"links"`
	}
	if err := json.Unmarshal([]byte(status), &st); err != nil {
		t.Fatalf("federation status --json: %v: %s", err, status)
	}
	for _, l := range st.Links {
		if l.Peer == "QN" && l.State == "up" {
			t.Fatalf("QN's link still up after its removal: %s", status)
		}
	}
	// History stays: the earlier exchange is still on record, both sides.
	waitState(vn, id1, "delivered")
	waitState(qn, id2, "delivered")
	// HN's own agency was never revoked by QN's attempt.
	sendID(t, hn.mustCLI("send", "--as", "000.00.00.H14", "--to", "000.00.00.G22", "--subject", "vẫn gửi được", "--json"))

	if strings.Contains(vn.logText(), "admitted by an earlier version") {
		t.Errorf("the national re-issued the credentials `member add` had just written: %s", vn.logText())
	}
}

// eventuallyFail runs a command that must be refused; while the
// federation's directory has not reached this bus it may fail for another
// reason, so a refusal without "bound to" or "served by" is asked again.
func (s *fedServe) eventuallyFail(args ...string) string {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, ok := s.cli(args...)
		if ok {
			s.t.Fatalf("docaxis %s on %s succeeded: %s", strings.Join(args, " "), s.home, out)
		}
		if strings.Contains(out, "bound to") || strings.Contains(out, "served by") || strings.Contains(out, "withdrawn") || time.Now().After(deadline) {
			return out
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func sendID(t *testing.T, out string) string {
	t.Helper()
	var r struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil || r.ID == "" {
		t.Fatalf("send --json: %v: %s", err, out)
	}
	return r.ID
}
