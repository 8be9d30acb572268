// Command voxgate is the SIP/WebRTC gateway and audio bridge.
//
//	voxgate [run] [-config FILE]      run the server (the default)
//	voxgate check [-config FILE]      check the config and dialplan, bind no ports
//	voxgate route [-config FILE] [-origin ORIGIN] [-from CALLER] NUMBER
//	voxgate version                   (also voxgate -version)
//	voxgate help                      (also -h)
//
// Without -config it runs on the embedded default configuration
// (configs/default.yaml). SIGTERM lets calls finish (up to drain_timeout,
// /readyz answering 503 meanwhile), SIGINT stops at once, SIGHUP reloads
// the users, the dialplan and the SIP TLS certificate. See cli.go for the subcommands.
package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/voxgate/voxgate/configs"
	"github.com/voxgate/voxgate/internal/config"
	"github.com/voxgate/voxgate/internal/logging"
	"github.com/voxgate/voxgate/sip"
)

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

func loadConfig(path string) (*Config, error) {
	if path == "" {
		return parseConfig(configs.DefaultName, configs.Default)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseConfig(path, data)
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(strings.ToUpper(orDefault(cfg.Log.Level, "info"))))
	json := strings.EqualFold(cfg.Log.Format, "json")
	// Durations in ms (JSON), addresses as transport:ip:port (internal/logging).
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: logging.ReplaceAttr(json)}
	if json {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func users(cfg *Config) []sip.User {
	out := make([]sip.User, 0, len(cfg.Users))
	for _, u := range cfg.Users {
		out = append(out, sip.User{Name: u.Name, Password: u.Password, HA1: strings.ToLower(u.HA1), SRTP: sip.SRTPPolicy(strings.ToLower(u.SRTP))})
	}
	return out
}

func run(configPath string) error {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return err
	}
	// Take the signals before anything starts: a SIGHUP that arrived
	// before Notify would kill the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	log := newLogger(cfg, os.Stderr)
	slog.SetDefault(log)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	userSet := sip.NewUsers(users(cfg)...)
	plan, err := loadDialplan(configPath, cfg)
	if err != nil {
		return err
	}
	a, err := wire(cfg, plan, userSet, log, wiring{})
	if err == nil {
		err = a.Start(ctx)
	}
	if err != nil {
		return configErr(configPath, cfg, err)
	}
	defer a.Close()
	bi, _ := debug.ReadBuildInfo()
	log.Info("voxgate started", "version", buildVersion(version, bi), "users", len(cfg.Users), "dialplan", orDefault(cfg.Dialplan, configs.DialplanName))

	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			_ = a.sip.ReloadTLS() // logs the outcome; a bad pair keeps the old one
			next, err := loadConfig(configPath)
			if err != nil {
				log.Error("reload failed, keeping the old users", "error", err)
				continue
			}
			nextPlan, err := loadDialplan(configPath, next)
			if err != nil {
				log.Error("reload failed, keeping the old dialplan and users", "error", err)
				continue
			}
			userSet.Set(users(next))
			a.sb.SetPlan(nextPlan)
			log.Info("users reloaded", "users", len(next.Users))
			log.Info("dialplan reloaded")
		case syscall.SIGTERM:
			a.draining.Store(true) // /readyz answers 503 from now on: send no new calls
			log.Info("SIGTERM: letting calls finish", "calls", a.sip.Calls(), "timeout", cfg.DrainTimeout)
			dctx, dcancel := context.WithTimeout(ctx, cfg.DrainTimeout)
			a.sip.Drain(dctx)
			dcancel()
			a.Close()
			log.Info("stopped")
			return nil
		case syscall.SIGINT:
			log.Info("SIGINT: stopping now", "calls", a.sip.Calls())
			a.Close()
			return nil
		}
	}
	return nil
}

// configErr names the config file and line for errors found when the server
// starts (only the SIP side finds config errors then: the web side's were
// found by Validate).
func configErr(path string, cfg *Config, err error) error {
	var ce *config.Error
	if !errors.As(err, &ce) {
		return err
	}
	return cfg.locate(orDefault(path, configs.DefaultName), "sip", err)
}
