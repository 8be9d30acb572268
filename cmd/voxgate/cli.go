package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit statuses of every subcommand.
const (
	exitOK    = 0 // done (check: the files are fine; route: a rule matches)
	exitFail  = 1 // failed: a config error, no route, the server could not run
	exitUsage = 2 // misused: an unknown subcommand or flag, a missing argument
)

// usageText is what -h and `voxgate help` print: every subcommand and flag.
const usageText = `voxgate: a SIP/WebRTC gateway, audio bridge and dialplan in one binary.

Usage:
  voxgate [run] [-config FILE]      run the server (the default subcommand)
  voxgate check [-config FILE]      check the config and its dialplan, bind no ports
  voxgate route [-config FILE] [-origin ORIGIN] [-from CALLER] NUMBER
                                    print the dialplan rule a call would take
  voxgate token -name NAME [-scopes admin,read,metrics]
                                    make an API token; print it and its web.tokens entry
  voxgate version                   print the version (also: voxgate -version)
  voxgate help                      print this text (also: -h)

Flags:
  -config FILE      the configuration file (run, check, route); default: the
                    embedded configs/default.yaml, as make run uses
  -origin ORIGIN    route: where the call comes from: user, web, guest or
                    trunk:NAME (default user)
  -from CALLER      route: the caller's user name or number (default none)
  -name NAME        token: who the token is for (required)
  -scopes LIST      token: comma-separated scopes (default read)
  -version          with no subcommand: print the version, as voxgate version
  -h, -help         print this text, or a subcommand's flags (voxgate check -h)

Exit status: 0 done, 1 failed (a config error, no route, a server error),
2 wrong usage. Signals (run): SIGTERM lets calls finish up to drain_timeout
(/readyz answers 503 meanwhile), SIGINT stops at once, SIGHUP reloads the
users and the dialplan.
`

// cli runs voxgate with its arguments (without the program name), writing
// to stdout and stderr, and returns the exit status. Without a subcommand,
// or with flags first (voxgate -config FILE), it runs the server.
func cli(args []string, stdout, stderr io.Writer) int {
	cmd, rest := "", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, rest = args[0], args[1:]
	}
	switch cmd {
	case "":
		return runCmd(rest, true, stdout, stderr)
	case "run":
		return runCmd(rest, false, stdout, stderr)
	case "check":
		return checkCmd(rest, stdout, stderr)
	case "route":
		return routeCmd(rest, stdout, stderr)
	case "version":
		return versionCmd(rest, stdout, stderr)
	case "token":
		return status(tokenCmd(rest, stdout), stderr)
	case "help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	fmt.Fprintf(stderr, "voxgate: unknown subcommand %q\n\n%s", cmd, usageText)
	return exitUsage
}

// status turns a subcommand's error into an exit status, printing it.
func status(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp): // -h printed the usage
		return exitOK
	case errors.Is(err, errUsage):
		return exitUsage
	}
	fmt.Fprintln(stderr, "voxgate:", err)
	return exitFail
}

// errUsage is a misuse already explained (by the flag package or a message).
var errUsage = errors.New("usage")

// newFlags makes a subcommand's flag set; its -h prints usage and the flags.
func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("voxgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s\n\nFlags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses a subcommand's flags: -h prints its usage to stdout (exit
// 0), a bad flag the error and usage to stderr (exit 2); done reports either.
func parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	fs.SetOutput(io.Discard) // the flag package would print usage itself, to one place
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return exitOK, true
	case err != nil:
		fs.SetOutput(stderr)
		fmt.Fprintln(stderr, err)
		fs.Usage()
		return exitUsage, true
	}
	fs.SetOutput(stderr)
	return exitOK, false
}

func configFlag(fs *flag.FlagSet) *string {
	return fs.String("config", "", "configuration `FILE` (default: the embedded configs/default.yaml)")
}

// runCmd runs the server. implicit: no subcommand was named, so -version
// and -h mean the whole program's.
func runCmd(args []string, implicit bool, stdout, stderr io.Writer) int {
	fs := newFlags("run", "voxgate [run] [-config FILE]", stderr)
	configPath := configFlag(fs)
	var showVersion *bool
	if implicit {
		showVersion = fs.Bool("version", false, "print the version and exit")
		fs.Usage = func() { fmt.Fprint(fs.Output(), usageText) }
	}
	if code, done := parse(fs, args, stdout, stderr); done {
		return code
	}
	if showVersion != nil && *showVersion {
		return versionCmd(nil, stdout, stderr)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "voxgate: unexpected argument %q (run takes only -config)\n", fs.Arg(0))
		return exitUsage
	}
	return status(run(*configPath), stderr)
}
