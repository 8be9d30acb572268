package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// cliFiles writes the files a CLI case names into a temporary directory
// and returns it.
func cliFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const cliPlan = `contexts:
  internal:
    allow_trunks: true
    rules:
      - number: "7000"
        room: {name: "7000", pin: "1234", moderator_pin: "9999", max: 10}
      - number: "7001"
        pin: {room: {name: board, pin: "1111"}, tries: 1}
      - prefix: "9"
        dial: {trunk: carrier, number: "$1", caller_id: "4930123456"}
      - number: "42"
        caller: alice
        echo: {}
      - goto: other
  other:
    rules:
      - pattern: '[a-z]+'
        dial: {user: "$number", timeout: 20}
      - reject: {status: 404, reason: "Not Found"}
  lobby:
    rules:
      - number: "100"
        playback: {file: welcome.wav}
origins:
  user: internal
  guest: other
  web: lobby
`

const cliConfig = `users:
  - {name: alice, password: a}
  - {name: bob, password: b}
sip:
  trunks:
    - {name: carrier, registrar: "sip:192.0.2.1", register: false}
dialplan: plan.yaml
`

// Every subcommand and its error paths, run through the dispatcher with
// the output captured: the exit status and what stdout and stderr say.
func TestCLI(t *testing.T) {
	dir := cliFiles(t, map[string]string{
		"voxgate.yaml":        cliConfig,
		"plan.yaml":           cliPlan,
		"typo.yaml":           "sip:\n  domain: x\n  domian: y\n",
		"multi.yaml":          "sip:\n  domian: x\nrooms:\n  rate: 16k\nusers:\n  - {name: a, pasword: b}\n",
		"rate.yaml":           "users: []\n\nrooms:\n  max: 0\n  tones: true\n  rate: 16k\n",
		"duration.yaml":       "drain_timeout: 5 seconds\n",
		"level.yaml":          "log: {level: loud}\n",
		"badplan.yaml":        "dialplan: loop.yaml\nsip:\n  listen:\n    - {transport: udp, addr: \"localhost:5060\"}\n",
		"loop.yaml":           "contexts:\n  a:\n    rules:\n      - goto: b\n  b:\n    rules:\n      - goto: a\norigins: {user: a}\n",
		"noplan.yaml":         "dialplan: missing.yaml\n",
		"planfield.yaml":      "dialplan: planfield-plan.yaml\n",
		"planfield-plan.yaml": "contexts:\n  a:\n    rules:\n      - number: \"1\"\n        echo: {}\n        rooom: {}\n",
	})
	cfg := func(name string) string { return filepath.Join(dir, name) }
	ok := cfg("voxgate.yaml")
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string // a regular expression the output must match ("" : empty)
		stderr string
	}{
		{"check the embedded default", []string{"check"}, 0, `^ok: configs/default.yaml, configs/dialplan.yaml: 2 users, 0 trunks, 10 rules\n$`, ""},
		{"check a file", []string{"check", "-config", ok}, 0, `^ok: \S+/voxgate.yaml, \S+/plan.yaml: 2 users, 1 trunk, 8 rules\n$`, ""},
		{"check: did you mean", []string{"check", "-config", cfg("typo.yaml")}, 1, "", `typo.yaml:3: sip.domian: unknown field \(did you mean "domain"\?\)\n$`},
		{"check: not a whole number", []string{"check", "-config", cfg("rate.yaml")}, 1, "", `rate.yaml:6: rooms.rate: "16k" is not a whole number\n$`},
		{"check: every mistake at once", []string{"check", "-config", cfg("multi.yaml")}, 1, "",
			`^\S+/multi.yaml:2: sip.domian: unknown field \(did you mean "domain"\?\)\n\S+/multi.yaml:4: rooms.rate: "16k" is not a whole number\n\S+/multi.yaml:6: users\[0\].pasword: unknown field \(did you mean "password"\?\)\n$`},
		{"check: duration syntax", []string{"check", "-config", cfg("duration.yaml")}, 1, "", `duration.yaml:1: drain_timeout: "5 seconds" is not a duration \(write e.g. 30s, 5m, 1h30m\)\n$`},
		{"check: allowed values", []string{"check", "-config", cfg("level.yaml")}, 1, "", `level.yaml:1: log.level: unknown level "loud" \(want debug, info, warn or error\)\n$`},
		{"check: each error, dialplan and SIP", []string{"check", "-config", cfg("badplan.yaml")}, 1, "",
			`^\S+/loop.yaml:\d+: contexts.a: goto loop through "a"\n\S+/badplan.yaml:4: sip.listen\[0\].addr: the first listener needs an IP address, not "localhost"\n$`},
		{"check: a dialplan's unknown field keeps its line", []string{"check", "-config", cfg("planfield.yaml")}, 1, "", `planfield-plan.yaml:6: contexts.a.rules\[0\].rooom: unknown field \(did you mean "room"\?\)\n$`},
		{"check: no dialplan file", []string{"check", "-config", cfg("noplan.yaml")}, 1, "", `dialplan: open \S+/missing.yaml: no such file or directory\n$`},
		{"check: no config file", []string{"check", "-config", cfg("nothere.yaml")}, 1, "", `nothere.yaml: no such file or directory\n$`},
		{"check: a stray argument", []string{"check", ok}, 2, "", `unexpected argument`},
		{"check: a bad flag", []string{"check", "-conf", ok}, 2, "", `flag provided but not defined: -conf\nUsage: voxgate check`},
		{"check -h", []string{"check", "-h"}, 0, `Usage: voxgate check \[-config FILE\]\n\nFlags:\n  -config FILE`, ""},

		{"route: room with its options, not its PINs", []string{"route", "-config", ok, "7000"}, 0, `^\S+/plan.yaml:5: context internal: room 7000 \(pin, moderator pin, max 10\)\n$`, ""},
		{"route: PIN room", []string{"route", "-config", ok, "-origin", "user", "-from", "bob", "7001"}, 0, `^\S+/plan.yaml:7: context internal: room board after a PIN prompt \(pin, 1 try\)\n$`, ""},
		{"route: flags after the number", []string{"route", "-config", ok, "915551230001", "-from", "alice"}, 0, `plan.yaml:9: context internal: dial 15551230001 through trunk carrier \(ring for 30s, caller ID 4930123456\)\n$`, ""},
		{"route: a caller's rule", []string{"route", "-config", ok, "-from", "alice", "42"}, 0, `plan.yaml:11: context internal: echo`, ""},
		{"route: another caller falls through goto", []string{"route", "-config", ok, "-from", "bob", "42"}, 0, `plan.yaml:19: context other: reject 404 Not Found\n$`, ""},
		{"route: a user", []string{"route", "-config", ok, "bob"}, 0, `plan.yaml:17: context other: dial user bob: all their phones and pages \(ring for 20s\)\n$`, ""},
		{"route: guest", []string{"route", "-config", ok, "-origin", "guest", "7000"}, 0, `plan.yaml:19: context other: reject 404`, ""},
		{"route: a playback", []string{"route", "-config", ok, "-origin", "web", "100"}, 0, `plan.yaml:22: context lobby: playback of welcome.wav, then hang up\n$`, ""},
		{"route: no rule matches", []string{"route", "-config", ok, "-origin", "web", "7000"}, 1, `^no route: no rule matches "7000" in context "lobby" \(the call is refused: 404 Not Found\)\n$`, ""},
		{"route: no context for the origin", []string{"route", "-config", ok, "-origin", "trunk:carrier", "1"}, 1, `^no route: origin "trunk:carrier" has no context in \S+/plan.yaml \(the call is refused: 403 Forbidden\)\n$`, ""},
		{"route: the default dialplan", []string{"route", "9196"}, 0, `^configs/dialplan.yaml:\d+: context internal: echo`, ""},
		{"route: a broken dialplan", []string{"route", "-config", cfg("planfield.yaml"), "1"}, 1, "", `planfield-plan.yaml:6: contexts.a.rules\[0\].rooom`},
		{"route: a bad origin", []string{"route", "-origin", "phone", "7000"}, 2, "", `-origin "phone": want user, web, guest or trunk:NAME`},
		{"route: no number", []string{"route", "-config", ok}, 2, "", `give one number to route \(got 0\)`},
		{"route: two numbers", []string{"route", "1", "2"}, 2, "", `give one number to route \(got 2\)`},
		{"route: a broken config", []string{"route", "-config", cfg("typo.yaml"), "1"}, 1, "", `typo.yaml:3: sip.domian`},

		{"token", []string{"token", "-name", "grafana", "-scopes", "metrics,read"}, 0, `(?s)^token: [A-Za-z0-9_-]{43}\n.*  - \{name: grafana, sha256: [0-9a-f]{64}, scopes: \[metrics, read\]\}\n$`, ""},
		{"token: unknown scope", []string{"token", "-name", "x", "-scopes", "root"}, 1, "", `-scopes`},
		{"token -h", []string{"token", "-h"}, 0, `usage: voxgate token -name NAME`, ""},

		{"version", []string{"version"}, 0, `^voxgate \S+\n(  \w+: +.*\n)*  go: +go\S+ \S+/\S+\n$`, ""},
		{"-version", []string{"-version"}, 0, `^voxgate \S+\n`, ""},
		{"version takes no flags", []string{"version", "-x"}, 2, "", `flag provided but not defined: -x`},
		{"help", []string{"help"}, 0, `^voxgate: a SIP/WebRTC gateway`, ""},
		{"-h", []string{"-h"}, 0, `^voxgate: a SIP/WebRTC gateway`, ""},
		{"-help", []string{"-help"}, 0, `Usage:\n  voxgate \[run\]`, ""},
		{"run -h", []string{"run", "-h"}, 0, `^Usage: voxgate \[run\] \[-config FILE\]`, ""},
		{"unknown subcommand", []string{"start"}, 2, "", `^voxgate: unknown subcommand "start"\n\nvoxgate: a SIP/WebRTC gateway`},
		{"unknown flag", []string{"-conf", ok}, 2, "", `flag provided but not defined: -conf`},
		{"run: a stray argument", []string{"run", "-config", ok, "now"}, 2, "", `unexpected argument "now"`},
		{"run: -version is not run's", []string{"run", "-version"}, 2, "", `flag provided but not defined: -version`},
		{"run: a config error", []string{"-config", cfg("typo.yaml")}, 1, "", `^voxgate: \S+/typo.yaml:3: sip.domian: unknown field \(did you mean "domain"\?\)\n$`},
		{"run: a config error, subcommand named", []string{"run", "-config", cfg("duration.yaml")}, 1, "", `drain_timeout: "5 seconds" is not a duration`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cli(c.args, &stdout, &stderr)
			if code != c.code {
				t.Errorf("exit status %d, want %d", code, c.code)
			}
			match := func(what, re string, got string) {
				if re == "" {
					if got != "" {
						t.Errorf("%s: got %q, want nothing", what, got)
					}
					return
				}
				if !regexp.MustCompile(re).MatchString(got) {
					t.Errorf("%s: got %q, want it to match %q", what, got, re)
				}
			}
			match("stdout", c.stdout, stdout.String())
			match("stderr", c.stderr, stderr.String())
		})
	}
}

// route prints what a rule does and never a PIN.
func TestRouteHidesPINs(t *testing.T) {
	dir := cliFiles(t, map[string]string{"voxgate.yaml": cliConfig, "plan.yaml": cliPlan})
	for _, n := range []string{"7000", "7001"} {
		var stdout bytes.Buffer
		if code := cli([]string{"route", "-config", filepath.Join(dir, "voxgate.yaml"), n}, &stdout, io.Discard); code != 0 {
			t.Fatalf("route %s: %d", n, code)
		}
		for _, pin := range []string{"1234", "9999", "1111"} {
			if strings.Contains(stdout.String(), pin) {
				t.Fatalf("route %s shows a PIN: %s", n, stdout.String())
			}
		}
	}
}

// The help text names every subcommand and every flag each one has.
func TestHelpListsEverything(t *testing.T) {
	for _, sub := range []string{"run", "check", "route", "token", "version", "help"} {
		if !strings.Contains(usageText, "voxgate "+sub) && !strings.Contains(usageText, "voxgate ["+sub+"]") {
			t.Errorf("the help does not list %q", sub)
		}
	}
	// Each subcommand's flags, as its -h lists them.
	for _, sub := range []string{"run", "check", "route", "token", "version"} {
		var out bytes.Buffer
		if code := cli([]string{sub, "-h"}, &out, io.Discard); code != 0 {
			t.Fatalf("%s -h: %d", sub, code)
		}
		for _, m := range regexp.MustCompile(`(?m)^  (-\w+)`).FindAllStringSubmatch(out.String(), -1) {
			if !strings.Contains(usageText, "  "+m[1]+" ") {
				t.Errorf("the help does not list %s's flag %s", sub, m[1])
			}
		}
	}
	var out bytes.Buffer
	if cli([]string{"-h"}, &out, io.Discard); !strings.Contains(out.String(), "-version") {
		t.Error("the help does not list -version")
	}
}

func TestVersionText(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/voxgate/voxgate", Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	platform := " " + runtime.GOOS + "/" + runtime.GOARCH
	cases := []struct {
		name   string
		linked string
		bi     *debug.BuildInfo
		want   string
	}{
		{"linked version wins", "v1.4.0-3-gabc-dirty", bi, "voxgate v1.4.0-3-gabc-dirty\n  module:   github.com/voxgate/voxgate (devel)\n  revision: 0123456789abcdef0123 (modified)\n  time:     2026-12-01T10:00:00Z\n  go:       go1.26.8" + platform + "\n"},
		{"the revision, dirty", "", bi, "voxgate 0123456789ab-dirty\n  module:   github.com/voxgate/voxgate (devel)\n  revision: 0123456789abcdef0123 (modified)\n  time:     2026-12-01T10:00:00Z\n  go:       go1.26.8" + platform + "\n"},
		{"a module version", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/voxgate/voxgate", Version: "v1.5.0"}},
			"voxgate v1.5.0\n  module:   github.com/voxgate/voxgate v1.5.0\n  go:       go1.26.8" + platform + "\n"},
		{"nothing recorded", "", nil, "voxgate devel\n  go:       " + runtime.Version() + platform + "\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := versionText(c.linked, c.bi); got != c.want {
				t.Fatalf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

// The real binary: -ldflags -X main.version sets the version (as make build
// does from git describe), and voxgate version and -version print it.
func TestBinaryVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "voxgate")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9-test", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"version"}, {"-version"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !strings.HasPrefix(string(out), "voxgate v9.9.9-test\n  module:   github.com/voxgate/voxgate") || !strings.Contains(string(out), "  go:       go1.") {
			t.Fatalf("%v printed %q", args, out)
		}
	}
	// check on the real binary binds nothing and answers with its status.
	out, err := exec.Command(bin, "check").Output()
	if err != nil || !strings.HasPrefix(string(out), "ok: configs/default.yaml") {
		t.Fatalf("check: %v %q", err, out)
	}
}
