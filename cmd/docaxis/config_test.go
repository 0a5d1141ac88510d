package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// configFlags is a flag set like serve's, with one flag of each type.
func configFlags() (*pflag.FlagSet, *struct {
	http      string
	rate      float64
	replicas  int
	size      int64
	noAuth    bool
	retention time.Duration
	hosts     []string
}) {
	v := &struct {
		http      string
		rate      float64
		replicas  int
		size      int64
		noAuth    bool
		retention time.Duration
		hosts     []string
	}{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.StringVar(&serveConfigFile, "config", "", "")
	fs.StringVar(&v.http, "http", "127.0.0.1:8080", "")
	fs.Float64Var(&v.rate, "max-rate", 0, "")
	fs.IntVar(&v.replicas, "replicas", 0, "")
	fs.Int64Var(&v.size, "max-attachment-size", 100, "")
	fs.BoolVar(&v.noAuth, "no-auth", false, "")
	fs.DurationVar(&v.retention, "retention", time.Hour, "")
	fs.StringSliceVar(&v.hosts, "tls-host", []string{"127.0.0.1", "localhost"}, "")
	return fs, v
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "docaxis.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigPrecedence: flags > DOCAXIS_* environment > file > defaults.
func TestConfigPrecedence(t *testing.T) {
	path := writeConfig(t, `# a comment
http: 0.0.0.0:9000
max-rate: 2.5
replicas: 3
max-attachment-size: 1048576
no-auth: true
retention: 87600h
tls-host: [bus.example.gov.vn, 10.0.0.1]
`)
	fs, v := configFlags()
	if err := fs.Parse([]string{"--config", path, "--replicas", "5"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DOCAXIS_MAX_RATE": "7"}
	if err := applyServeConfig(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if v.replicas != 5 {
		t.Errorf("replicas = %d, want the flag's 5", v.replicas)
	}
	if v.rate != 7 {
		t.Errorf("max-rate = %v, want the environment's 7", v.rate)
	}
	if v.http != "0.0.0.0:9000" || v.size != 1<<20 || !v.noAuth || v.retention != 87600*time.Hour {
		t.Errorf("from the file: http %q size %d no-auth %v retention %v", v.http, v.size, v.noAuth, v.retention)
	}
	if strings.Join(v.hosts, ",") != "bus.example.gov.vn,10.0.0.1" {
		t.Errorf("tls-host = %v, want the file's list replacing the default", v.hosts)
	}

	// DOCAXIS_CONFIG names the file when --config is absent.
	fs, v = configFlags()
	_ = fs.Parse(nil)
	env = map[string]string{"DOCAXIS_CONFIG": path}
	if err := applyServeConfig(fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if v.replicas != 3 {
		t.Errorf("replicas = %d from DOCAXIS_CONFIG's file, want 3", v.replicas)
	}

	// Defaults stay when nothing sets them.
	fs, v = configFlags()
	_ = fs.Parse(nil)
	if err := applyServeConfig(fs, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if v.http != "127.0.0.1:8080" || v.retention != time.Hour || len(v.hosts) != 2 {
		t.Errorf("defaults changed: %+v", v)
	}
}

// TestConfigBadInput: every mistake names the file, the line and the key.
func TestConfigBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string // in the error
	}{
		{"unknown key", "http: 127.0.0.1:8080\nlisten-adress: 0.0.0.0:4222\n", []string{":2:", `"listen-adress"`, "unknown key"}},
		{"the config key itself", "config: other.yaml\n", []string{":1:", `"config"`, "unknown key"}},
		{"string for int", "replicas: three\n", []string{":1:", `"replicas"`, "whole number", `"three"`}},
		{"float for int", "\n\nreplicas: 1.5\n", []string{":3:", `"replicas"`, "whole number"}},
		{"int for string", "http: 8080\n", []string{":1:", `"http"`, "want a string", "quote it"}},
		{"string for bool", "no-auth: yes please\n", []string{":1:", `"no-auth"`, "true or false"}},
		{"bad duration", "retention: 10 years\n", []string{":1:", `"retention"`, "duration"}},
		{"number for duration", "retention: 3600\n", []string{":1:", `"retention"`, "duration"}},
		{"mapping for string", "http:\n  host: x\n", []string{":2:", `"http"`, "mapping"}},
		{"list for string", "http: [a, b]\n", []string{":1:", `"http"`, "list"}},
		{"number in a list", "tls-host: [a, 1]\n", []string{":1:", `"tls-host"`, "list of strings"}},
		{"empty value", "http:\n", []string{":1:", `"http"`, "nothing"}},
		{"duplicate", "replicas: 1\nreplicas: 2\n", []string{":2:", `"replicas"`, "set twice", "line 1"}},
		{"not a mapping", "- http\n", []string{":1:", "mapping"}},
		{"int overflow", "max-attachment-size: 99999999999999999999\n", []string{":1:", `"max-attachment-size"`}},
		{"yaml syntax", "http: [\n", []string{"docaxis.yaml", "configuration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.text)
			fs, v := configFlags()
			_ = fs.Parse([]string{"--config", path})
			err := applyServeConfig(fs, func(string) string { return "" })
			if err == nil {
				t.Fatalf("accepted %q", tc.text)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %v is not ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if v.http != "127.0.0.1:8080" || v.replicas != 0 {
				t.Errorf("a refused file changed settings: %+v", v)
			}
		})
	}
	// A bad environment value names the variable.
	fs, _ := configFlags()
	_ = fs.Parse(nil)
	err := applyServeConfig(fs, func(k string) string {
		if k == "DOCAXIS_REPLICAS" {
			return "many"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "DOCAXIS_REPLICAS") {
		t.Errorf("bad DOCAXIS_REPLICAS: %v", err)
	}
}

// TestConfigServeFlags: every flag of the real serve command can be set
// from a file (its default value written back), and the example file in
// deploy/ holds only known keys of the right types.
func TestConfigServeFlags(t *testing.T) {
	fs := serveCmd.Flags()
	fs.AddFlagSet(rootCmd.PersistentFlags())
	var b strings.Builder
	n := 0
	fs.VisitAll(func(f *pflag.Flag) {
		if configSkip[f.Name] {
			return
		}
		n++
		val := f.DefValue
		switch typ := f.Value.Type(); {
		case strings.HasSuffix(typ, "Slice"):
			val = "[" + strings.Trim(val, "[]") + "]"
		case typ == "string" || typ == "duration":
			val = `"` + val + `"`
		}
		b.WriteString(f.Name + ": " + val + "\n")
	})
	if n < 30 {
		t.Fatalf("only %d serve flags found", n)
	}
	if _, err := parseConfig("defaults.yaml", []byte(b.String()), fs); err != nil {
		t.Errorf("serve's own defaults as a file: %v\n%s", err, b.String())
	}
	example, err := os.ReadFile("../../deploy/docaxis.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The commented settings too: uncommented, they must parse.
	var all []string
	for _, line := range strings.Split(string(example), "\n") {
		s := strings.TrimPrefix(line, "# ")
		if k, _, ok := strings.Cut(s, ":"); ok && fs.Lookup(k) != nil && !strings.Contains(k, " ") {
			all = append(all, s)
		}
	}
	if len(all) < 30 {
		t.Errorf("example file shows %d settings", len(all))
	}
	if _, err := parseConfig("docaxis.example.yaml", example, fs); err != nil {
		t.Errorf("deploy/docaxis.example.yaml: %v", err)
	}
	if _, err := parseConfig("docaxis.example.yaml (uncommented)", []byte(strings.Join(all, "\n")), fs); err != nil {
		t.Errorf("deploy/docaxis.example.yaml, commented settings: %v", err)
	}
}
