package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voxgate/voxgate/configs"
)

// The systemd unit in configs/ keeps its hardening, runs the subcommands
// that exist, waits longer than the drain on stop, and passes
// systemd-analyze verify (where systemd-analyze is installed).
func TestSystemdUnit(t *testing.T) {
	data, err := os.ReadFile("../../configs/voxgate.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	directives := map[string][]string{}
	for _, line := range strings.Split(unit, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			directives[k] = append(directives[k], v)
		}
	}
	for k, want := range map[string]string{
		"DynamicUser": "yes", "StateDirectory": "voxgate", "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK", "SystemCallFilter": "@system-service",
		"KillSignal": "SIGTERM", "ExecStart": "/usr/local/bin/voxgate run -config /etc/voxgate/config.yaml",
		"ExecReload": "/bin/kill -HUP $MAINPID",
	} {
		found := false
		for _, v := range directives[k] {
			found = found || v == want
		}
		if !found {
			t.Errorf("the unit lacks %s=%s (has %q)", k, want, directives[k])
		}
	}
	// Each voxgate command line the unit runs is one the CLI takes.
	for _, k := range []string{"ExecStartPre", "ExecStart", "ExecReload"} {
		for _, v := range directives[k] {
			if args, ok := strings.CutPrefix(v, "/usr/local/bin/voxgate "); ok {
				if sub := strings.Fields(args)[0]; sub != "run" && sub != "check" {
					t.Errorf("%s runs voxgate %s", k, sub)
				}
			}
		}
	}
	cfg, err := parseConfig(configs.DefaultName, configs.Default)
	if err != nil {
		t.Fatal(err)
	}
	stop, err := time.ParseDuration(directives["TimeoutStopSec"][0])
	if err != nil || stop < cfg.DrainTimeout+15*time.Second {
		t.Errorf("TimeoutStopSec=%v: want at least drain_timeout (%v) + 15s for closing", directives["TimeoutStopSec"], cfg.DrainTimeout)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: the unit is not verified")
		return
	}
	// verify wants the binary where ExecStart names it: a copy of the unit
	// names the one the tests built.
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "voxgate.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(unit, "/usr/local/bin/voxgate", voxgateBinary(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
