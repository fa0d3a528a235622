package main

import (
	"fmt"
	"runtime/debug"
)

// buildVersion is what --version says: the module's version ("(devel)" for a build from a
// checkout), the VCS revision and time, and the Go toolchain. A build without VCS stamping
// (go build -buildvcs=false, as CI does, or from a module cache) has no revision; it says so
// rather than printing nothing.
type buildVersion struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Revision string `json:"revision"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
}

func readBuildVersion() buildVersion {
	v := buildVersion{Version: "(devel)", Revision: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	v.Module, v.Go = info.Main.Path, info.GoVersion
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func (v buildVersion) String() string {
	rev := "revision unknown (built without VCS stamping)"
	if v.Revision != "unknown" {
		rev = "revision " + v.Revision
		if v.Modified {
			rev += " (modified)"
		}
		if v.Time != "" {
			rev += ", " + v.Time
		}
	}
	return fmt.Sprintf("verifier %s %s, %s, %s", v.Module, v.Version, rev, v.Go)
}

func printVersion(e *env) {
	v := readBuildVersion()
	if e.json {
		writeJSON(e, v)
		return
	}
	fmt.Fprintln(e.stdout, v)
}
