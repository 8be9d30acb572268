package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/voxgate/voxgate/configs"
	"github.com/voxgate/voxgate/sip"
)

// checkCmd checks a config and its dialplan as run would load them, binding
// no ports: "ok: ..." on stdout and exit 0, or each error on stderr (file:
// line: field: message) and exit 1.
func checkCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "voxgate check [-config FILE]", stderr)
	configPath := configFlag(fs)
	if code, done := parse(fs, args, stdout, stderr); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "voxgate check: unexpected argument %q (use -config FILE)\n", fs.Arg(0))
		return exitUsage
	}
	sum, errs := check(*configPath)
	for _, err := range errs {
		fmt.Fprintln(stderr, err)
	}
	if len(errs) > 0 {
		return exitFail
	}
	fmt.Fprintln(stdout, sum)
	return exitOK
}

// check loads the config and the dialplan and builds the SIP side without
// starting it (it finds what only it can: listener addresses, the TLS
// certificate). It returns the summary line, or every error it found: the
// config's first, else the dialplan's and the SIP side's.
func check(configPath string) (string, []error) {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return "", []error{err}
	}
	var errs []error
	plan, err := loadDialplan(configPath, cfg)
	if err != nil {
		errs = append(errs, err)
	}
	srv, err := sip.NewServer(cfg.SIP, sip.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		errs = append(errs, configErr(configPath, cfg, err))
	} else {
		srv.Close()
	}
	if len(errs) > 0 {
		return "", errs
	}
	rules := 0
	for _, c := range plan.Contexts {
		rules += len(c.Rules)
	}
	return fmt.Sprintf("ok: %s, %s: %s, %s, %s", orDefault(configPath, configs.DefaultName), dialplanName(configPath, cfg),
		plural(len(cfg.Users), "user", "users"), plural(len(cfg.SIP.Trunks), "trunk", "trunks"), plural(rules, "rule", "rules")), nil
}

// dialplanName is how a config's dialplan is named: its path as loaded,
// or the embedded default's name.
func dialplanName(configPath string, cfg *Config) string {
	if cfg.Dialplan == "" {
		return configs.DialplanName
	}
	return dialplanPath(configPath, cfg)
}
