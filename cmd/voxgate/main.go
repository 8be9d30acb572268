// Command voxgate is the SIP/WebRTC gateway and audio bridge.
//
//	voxgate [-config FILE]
//
// Without -config it runs on the embedded default configuration
// (configs/default.yaml). SIGTERM lets calls finish (up to drain_timeout),
// SIGINT stops at once, SIGHUP reloads the users.
package main

import (
	"context"
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/voxgate/voxgate/bridge"
	"github.com/voxgate/voxgate/configs"
	"github.com/voxgate/voxgate/internal/config"
	"github.com/voxgate/voxgate/sip"
	"github.com/voxgate/voxgate/webclient"
)

// Pin at compile time that SIP and browser calls are bridge legs.
var (
	_ bridge.Leg = (*sip.Call)(nil)
	_ bridge.Leg = (*webclient.Call)(nil)
)

func main() {
	configPath := flag.String("config", "", "configuration file (default: the embedded configs/default.yaml)")
	flag.Parse()
	if err := run(*configPath); err != nil {
		fmt.Fprintln(os.Stderr, "voxgate:", err)
		os.Exit(1)
	}
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
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(cfg.Log.Format, "json") {
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
		out = append(out, sip.User{Name: u.Name, Password: u.Password, HA1: strings.ToLower(u.HA1)})
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
	rt := newRouter(cfg, plan, log)
	defer rt.rooms.Close()
	srv, web, err := start(ctx, cfg, userSet, log, rt)
	if err != nil {
		return configErr(configPath, cfg, err)
	}
	defer web.Close()
	log.Info("voxgate started", "users", len(cfg.Users), "dialplan", orDefault(cfg.Dialplan, configs.DialplanName))

	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
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
			rt.plan.Store(nextPlan)
			log.Info("users reloaded", "users", len(next.Users))
			log.Info("dialplan reloaded")
		case syscall.SIGTERM:
			log.Info("SIGTERM: letting calls finish", "calls", srv.Calls(), "timeout", cfg.DrainTimeout)
			dctx, dcancel := context.WithTimeout(ctx, cfg.DrainTimeout)
			srv.Drain(dctx)
			dcancel()
			srv.Close()
			log.Info("stopped")
			return nil
		case syscall.SIGINT:
			log.Info("SIGINT: stopping now", "calls", srv.Calls())
			srv.Close()
			return nil
		}
	}
	return nil
}

// start wires the packages together and opens the listeners.
func start(ctx context.Context, cfg *Config, userSet *sip.Users, log *slog.Logger, r *router) (*sip.Server, *webclient.Server, error) {
	srv, err := sip.NewServer(cfg.SIP, sip.WithLogger(log), sip.WithUsers(userSet), sip.WithHandler(r))
	if err != nil {
		return nil, nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, nil, err
	}
	r.sip = srv // before the web side serves the REST API
	web, err := webclient.NewServer(cfg.Web, webclient.WithLogger(log), webclient.WithHandler(browserRouter{r}), webclient.WithControl(control{r}),
		webclient.WithAuthenticator(passwordChecker{users: userSet, realm: cfg.SIP.Domain}))
	if err == nil {
		err = web.Start(ctx)
	}
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	r.web = web
	return srv, web, nil
}

// passwordChecker signs browsers in with the SIP users' passwords (or their
// MD5 HA1, for users configured that way).
type passwordChecker struct {
	users *sip.Users
	realm string
}

func (p passwordChecker) CheckPassword(user, password string) bool {
	u, ok := p.users.Lookup(user)
	switch {
	case !ok:
		return false
	case u.Password != "":
		return subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1
	case len(u.HA1) == 32:
		h := md5.Sum([]byte(user + ":" + p.realm + ":" + password))
		return subtle.ConstantTimeCompare([]byte(u.HA1), []byte(hex.EncodeToString(h[:]))) == 1
	}
	return false
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
