package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/docaxis/docaxis/broker/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

// Set by the Makefile: go build -ldflags "-X main.version=... -X
// main.commit=... -X main.buildDate=...". A plain `go build` or `go
// install` leaves them empty and buildInfo falls back to what the Go
// toolchain stamped into the binary.
var (
	version   string
	commit    string
	buildDate string
)

// BuildInfo says which docaxis this is.
type BuildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Date    string `json:"date"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

// buildInfo returns the linker's values, else the toolchain's (module
// version, VCS revision and time), else "dev"/"unknown".
func buildInfo() BuildInfo {
	bi := BuildInfo{Version: version, Commit: commit, Date: buildDate, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		if bi.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			bi.Version = info.Main.Version
		}
		dirty := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if bi.Commit == "" {
					bi.Commit = s.Value
				}
			case "vcs.time":
				if bi.Date == "" {
					bi.Date = s.Value
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && commit == "" && bi.Commit != "" {
			bi.Commit += "-dirty"
		}
	}
	if bi.Version == "" {
		bi.Version = "dev"
	}
	if bi.Commit == "" {
		bi.Commit = "unknown"
	}
	if bi.Date == "" {
		bi.Date = "unknown"
	}
	return bi
}

var versionJSON bool

var versionCmd = &cobra.Command{
	Use:   "version",
	Short: "print the version, commit, build date and Go version of this binary",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, _ []string) error {
		bi := buildInfo()
		if versionJSON {
			return printJSON(cmd, bi)
		}
		_, err := fmt.Fprintf(cmd.OutOrStdout(), "docaxis %s\ncommit:  %s\nbuilt:   %s\ngo:      %s %s/%s\n",
			bi.Version, bi.Commit, bi.Date, bi.Go, bi.OS, bi.Arch)
		return err
	},
}

func init() {
	versionCmd.Flags().BoolVar(&versionJSON, "json", false, "print one JSON object")
	rootCmd.AddCommand(versionCmd)
}

// registerBuildInfo adds docaxis_build_info{version,commit,go} 1 to the
// bus's metrics, the usual way to tell which build a target runs.
func registerBuildInfo(m *metrics.Metrics) error {
	bi := buildInfo()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "docaxis_build_info",
		Help:        "The docaxis build this bus runs (always 1).",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit, "go": bi.Go},
	})
	g.Set(1)
	if err := m.Registry().Register(g); err != nil {
		return fmt.Errorf("register docaxis_build_info: %w", err)
	}
	return nil
}
