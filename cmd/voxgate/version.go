package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set when building a release or with make:
//
//	go build -ldflags "-X main.version=$(git describe --always --dirty)"
//
// Without it, the version comes from the build information Go records.
var version string

// versionCmd prints the version: voxgate version, voxgate -version.
func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "voxgate version", stderr)
	if code, done := parse(fs, args, stdout, stderr); done {
		return code
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprint(stdout, versionText(version, bi))
	return exitOK
}

// buildVersion is the version voxgate reports: the one set at link time,
// else the module's (a tagged release built with go install), else the
// commit it was built from ("-dirty" with uncommitted changes), else "devel".
func buildVersion(linked string, bi *debug.BuildInfo) string {
	if linked != "" {
		return linked
	}
	if bi == nil {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	if rev := setting(bi, "vcs.revision"); rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if setting(bi, "vcs.modified") == "true" {
			rev += "-dirty"
		}
		return rev
	}
	return "devel"
}

// versionText is what voxgate version prints: the version, then what the
// build recorded (each line only when known).
func versionText(linked string, bi *debug.BuildInfo) string {
	var b strings.Builder
	fmt.Fprintf(&b, "voxgate %s\n", buildVersion(linked, bi))
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "  %-9s %s\n", k+":", v)
		}
	}
	goVersion := runtime.Version()
	if bi != nil {
		mod := bi.Main.Path
		if mod != "" && bi.Main.Version != "" {
			mod += " " + bi.Main.Version
		}
		line("module", mod)
		rev := setting(bi, "vcs.revision")
		if rev != "" && setting(bi, "vcs.modified") == "true" {
			rev += " (modified)"
		}
		line("revision", rev)
		line("time", setting(bi, "vcs.time"))
		if bi.GoVersion != "" {
			goVersion = bi.GoVersion
		}
	}
	line("go", goVersion+" "+runtime.GOOS+"/"+runtime.GOARCH)
	return b.String()
}

func setting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}
